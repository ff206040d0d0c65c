//go:build unix

package inputs_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wso2img/wso2img/build/archive"
	"github.com/wso2img/wso2img/build/inputs"
)

// TestStageLayout: verified files are named by their sha256, trees by their digest,
// all inside one private directory with every time pinned; Close removes it, read-only
// folders included.
func TestStageLayout(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{"conf/a.xml": "<a/>", "lib/x.jar": "x", "lib/ro/": "", "lib/ro/y.jar": "y", "lib/link": "->x.jar"})
	if err := os.Chmod(filepath.Join(root, "lib/ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "lib/ro"), 0o755) })
	cache := t.TempDir()
	f := newFetcher(t, inputs.Options{CacheDir: cache})
	st, err := f.NewStage()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(st.Dir()) != filepath.Join(cache, "staging") {
		t.Errorf("stage %s is not under the cache's staging folder", st.Dir())
	}
	for _, d := range []string{filepath.Join(cache, "staging"), st.Dir()} {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v (%v), want 0700", d, fi.Mode(), err)
		}
	}
	ctx := context.Background()
	file, err := st.Fetch(ctx, inputs.Spec{Profile: "p", Field: "inputs[0]", Path: filepath.Join(root, "conf/a.xml"), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	same, err := st.Fetch(ctx, inputs.Spec{Profile: "p", Field: "inputs[1]", Path: filepath.Join(root, "conf/a.xml"), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := st.Fetch(ctx, inputs.Spec{Profile: "p", Field: "inputs[2]", Path: filepath.Join(root, "lib"), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(st.Dir(), "files", sha256hex([]byte("<a/>"))); file.Local != want || same.Local != want {
		t.Errorf("file Locals %s and %s, want both %s", file.Local, same.Local, want)
	}
	if want := filepath.Join(st.Dir(), "trees", strings.TrimPrefix(dir.Digest, "sha256:")); dir.Local != want {
		t.Errorf("directory Local = %s, want %s", dir.Local, want)
	}
	if fi, err := os.Stat(filepath.Join(dir.Local, "ro")); err != nil || fi.Mode().Perm() != 0o555 {
		t.Errorf("staged read-only folder: %v %v, want mode 0555 as in the source", fi.Mode(), err)
	}
	filepath.Walk(dir.Local, func(p string, fi fs.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !fi.ModTime().Equal(inputs.StagedTime) {
			t.Errorf("%s has time %v, want the pinned %v", p, fi.ModTime(), inputs.StagedTime)
		}
		return nil
	})
	if fi, err := os.Lstat(file.Local); err != nil || !fi.ModTime().Equal(inputs.StagedTime) {
		t.Errorf("staged file time %v (%v), want %v", fi.ModTime(), err, inputs.StagedTime)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(st.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stage is still there after Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestStageSweep: a stage whose process died (its lock is free) is removed by the next
// NewStage; a live one is kept.
func TestStageSweep(t *testing.T) {
	cache := t.TempDir()
	f := newFetcher(t, inputs.Options{CacheDir: cache})
	live := newStage(t, f)

	// A stage made by another process, which then exited: its lock went with it.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStage$")
	cmd.Env = append(os.Environ(), "WSO2IMG_HELPER_STAGE="+cache)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	dead := strings.TrimSpace(string(out[bytes.LastIndexByte(bytes.TrimSpace(out), '\n')+1:]))
	dead = strings.TrimPrefix(dead, "stage ")
	if !strings.HasPrefix(dead, filepath.Join(cache, "staging")) {
		t.Fatalf("helper output %q names no stage", out)
	}
	if _, err := os.Stat(filepath.Join(dead, "files")); err != nil {
		t.Fatalf("the dead process's stage is not there: %v", err)
	}
	var log syncBuffer
	f2 := newFetcher(t, inputs.Options{CacheDir: cache, Log: &log})
	newStage(t, f2)
	if _, err := os.Stat(dead); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stage of a process that died is still there (%v)", err)
	}
	if !strings.Contains(log.String(), "which an earlier run left behind") {
		t.Errorf("log = %q, want a line about the removed stage", log.String())
	}
	if _, err := os.Stat(live.Dir()); err != nil {
		t.Errorf("a live stage was removed: %v", err)
	}
}

// TestHelperStage is not a test: TestStageSweep runs it in a child process that makes
// a stage, fills it and exits without closing it.
func TestHelperStage(t *testing.T) {
	cache := os.Getenv("WSO2IMG_HELPER_STAGE")
	if cache == "" {
		t.Skip("a helper for TestStageSweep")
	}
	f, err := inputs.New(inputs.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.NewStage()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(st.Dir(), "files", "x"), []byte("x"), 0o600)
	os.Stdout.WriteString("stage " + st.Dir() + "\n")
	os.Exit(0)
}

func zipBytes(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtract(t *testing.T) {
	apps := zipBytes(t, map[string]string{"a_1.0.0.car": "one", "sub/b_1.0.0.car": "two"})
	slip := zipBytes(t, map[string]string{"../../etc/cron.d/x": "boom"})
	srv := newFiles(t, map[string][]byte{"/apps.zip": apps, "/slip.zip": slip})
	root := t.TempDir()
	local := filepath.Join(root, "apps.zip")
	if err := os.WriteFile(local, apps, 0o644); err != nil {
		t.Fatal(err)
	}
	tree(t, root, map[string]string{"dir/x": "x"})
	f := newFetcher(t, inputs.Options{CAFile: srv.CAFile})

	for _, s := range []inputs.Spec{
		{Profile: "p", Field: "inputs[0]", URL: srv.URL + "/apps.zip", SHA256: sha256hex(apps), Extract: true},
		{Profile: "p", Field: "inputs[0]", Path: local, Root: root, Extract: true},
	} {
		v, err := fetch(t, f, s)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Dir || v.Archive != "sha256:"+sha256hex(apps) || v.Size != 6 {
			t.Errorf("extracted %s: dir %v, archive %s, size %d", s.URL+s.Path, v.Dir, v.Archive, v.Size)
		}
		var rels []string
		for _, e := range v.Files {
			rels = append(rels, e.Type+" "+e.Rel)
		}
		if got := strings.Join(rels, ", "); got != "file a_1.0.0.car, dir sub, file sub/b_1.0.0.car" {
			t.Errorf("files = %s", got)
		}
		if b, err := os.ReadFile(filepath.Join(v.Local, "sub", "b_1.0.0.car")); err != nil || string(b) != "two" {
			t.Errorf("staged entry = %q, %v", b, err)
		}
	}

	_, err := fetch(t, f, inputs.Spec{Profile: "p", Field: "inputs[3]", URL: srv.URL + "/slip.zip", SHA256: sha256hex(slip), Extract: true})
	ve := wantVerifyError(t, err, "archive path", `inputs[3] (`+srv.URL+"/slip.zip)", `entry "../../etc/cron.d/x"`)
	var ae *archive.Error
	if !errors.As(ve, &ae) {
		t.Errorf("the VerifyError does not wrap the *archive.Error")
	}
	_, err = fetch(t, f, inputs.Spec{Profile: "p", Field: "inputs[1]", Path: filepath.Join(root, "dir"), Root: root, Extract: true})
	wantContains(t, err, "extract applies to an archive file")
	// The checksum applies to the archive, before anything is extracted. (A fresh
	// cache: a cached blob is used whatever URL names it.)
	_, err = fetch(t, newFetcher(t, inputs.Options{CAFile: srv.CAFile}), inputs.Spec{Profile: "p", Field: "inputs[0]", URL: srv.URL + "/apps.zip", SHA256: sha256hex(slip), Extract: true})
	wantVerifyError(t, err, "sha256", "found "+sha256hex(apps))
}

func TestFetcherFetchKeepsNothing(t *testing.T) {
	cache := t.TempDir()
	root := t.TempDir()
	tree(t, root, map[string]string{"a.xml": "a"})
	v, err := newFetcher(t, inputs.Options{CacheDir: cache}).Fetch(context.Background(), inputs.Spec{Profile: "p", Field: "inputs[0]", Path: filepath.Join(root, "a.xml"), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if v.Local != "" || v.Digest != "sha256:"+sha256hex([]byte("a")) {
		t.Errorf("Fetch = Local %q, digest %s; want no Local and the file's digest", v.Local, v.Digest)
	}
	left, _ := os.ReadDir(filepath.Join(cache, "staging"))
	if len(left) != 0 {
		t.Errorf("staging holds %v after Fetcher.Fetch", left)
	}
}
