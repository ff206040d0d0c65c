// Package testenv starts real daemons for end-to-end tests, the demo and benchmarks: a
// CNCF distribution registry and a private buildkitd, both on loopback or a private
// socket, both built into bin/ by `make tools`.
//
// It owns finding those binaries, starting the daemons under a directory the caller
// gives, waiting until they answer, and stopping them again. It must not be imported by
// product code (cmd, build, sign, verify, profiles): it is for tests and hack/ programs.
//
// Every daemon is started with Setpdeathsig on Linux, so it dies with the process that
// started it even when that process is killed; Close is still the way to stop one, and is
// safe to call more than once. Logs stay under the daemon's directory so that a failing
// test can print them (see Tail).
package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// modulePath is the root module's path; Bin looks for its go.mod to find the repository.
const modulePath = "github.com/wso2img/wso2img"

// E2EVar is the environment variable that turns a skipped end-to-end test into a failed
// one: `make test` and CI set it to 1 so that a missing tool is never silently skipped.
const E2EVar = "WSO2IMG_E2E"

// Bin returns the path of the tool name: bin/<name> at the repository root (found by
// walking up from the working directory to the go.mod of github.com/wso2img/wso2img),
// else name on $PATH (and, for system tools such as runc, the sbin directories that a
// non-root $PATH may lack).
func Bin(name string) (string, error) {
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, "bin", name)
		if isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not in the repository's bin/ nor on $PATH; run `make tools` (bash hack/tools.sh)", name)
}

// Need skips t with a clear message unless every named prerequisite is present, and
// fails t instead of skipping when WSO2IMG_E2E=1 (as `make test` and CI set it).
//
// A name is a tool that Bin must find ("registry", "buildkitd", "buildctl", "runc"), or
// "root" for an effective uid of 0. "buildkitd" implies "root", "runc" and Linux, since
// the OCI worker runs containers with runc.
func Need(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	seen := map[string]bool{}
	var check func(name string)
	check = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		switch name {
		case "root":
			if os.Geteuid() != 0 {
				missing = append(missing, "root (buildkitd and runc need uid 0)")
			}
			return
		case "buildkitd":
			if runtime.GOOS != "linux" {
				missing = append(missing, "linux (buildkitd's OCI worker runs only there)")
			}
			check("root")
			check("runc")
		}
		if _, err := Bin(name); err != nil {
			missing = append(missing, err.Error())
		}
	}
	for _, name := range names {
		check(name)
	}
	if len(missing) == 0 {
		return
	}
	msg := "missing prerequisites: " + strings.Join(missing, "; ")
	if os.Getenv(E2EVar) == "1" {
		t.Fatalf("%s (%s=1: end-to-end tests must run, not skip)", msg, E2EVar)
		return
	}
	t.Skipf("%s; skipping (%s=1 makes this a failure)", msg, E2EVar)
}

// Tail returns the last n lines of the file at path, for printing a daemon's log when a
// test fails. It never fails: an unreadable file gives a line that says why.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	// Keep only the end of a big log: 256 KiB holds far more than a test prints.
	const maxTail = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > maxTail {
		if _, err := f.Seek(st.Size()-maxTail, io.SeekStart); err != nil {
			return fmt.Sprintf("(cannot read %s: %v)", path, err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// repoRoot walks up from the working directory to the directory holding the root
// module's go.mod (nested modules such as tools/buildkit are passed over).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && moduleOf(data) == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the " + modulePath + " repository")
		}
		dir = parent
	}
}

// moduleOf returns the module path that a go.mod declares.
func moduleOf(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
