package buildkitd_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/build/buildkitd"
	"github.com/wso2img/wso2img/internal/testenv"
)

func TestConfig(t *testing.T) {
	c := buildkitd.Config("/state/root", "/usr/sbin/runc", "/state/otel.sock", []string{"127.0.0.1:5001", "127.0.0.1:5000", "127.0.0.1:5001"})
	for _, want := range []string{
		`root = "/state/root"`,
		`binary = "/usr/sbin/runc"`,
		`snapshotter = "overlayfs"`,
		`[registry."127.0.0.1:5000"]`,
		"http = true",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
	if strings.Count(c, `[registry."127.0.0.1:5001"]`) != 1 {
		t.Errorf("a registry listed twice is configured twice:\n%s", c)
	}
	if strings.Index(c, "5000") > strings.Index(c, "5001") {
		t.Errorf("registries are not sorted, so the config (and the restart decision) would depend on flag order:\n%s", c)
	}
}

func TestSocketPath(t *testing.T) {
	if got := buildkitd.SocketPath("/var/lib/x"); got != "/var/lib/x/buildkitd.sock" {
		t.Errorf("short dir: %s", got)
	}
	long := "/" + strings.Repeat("d", 120)
	got := buildkitd.SocketPath(long)
	if len(got) > 100 || got != buildkitd.SocketPath(long) {
		t.Errorf("long dir: %s (%d bytes), want a short, stable path", got, len(got))
	}
}

func TestConnectNamedHostDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := buildkitd.Connect(context.Background(), buildkitd.Options{Host: "unix://" + sock})
	if err == nil || !strings.Contains(err.Error(), "cannot reach BuildKit at unix://"+sock) || !strings.Contains(err.Error(), "--buildkit-host") {
		t.Fatalf("Connect to nothing = %v, want an error naming the address and the flag", err)
	}
}

// TestPrivateDaemon: with no daemon named and none on the default socket, Connect starts
// wso2img's own, reuses it next time, and restarts it when its configuration changes.
func TestPrivateDaemon(t *testing.T) {
	testenv.Need(t, "buildkitd")
	if _, err := os.Stat(strings.TrimPrefix(buildkitd.DefaultAddr, "unix://")); err == nil {
		t.Skip("a system buildkitd answers on the default socket; Connect would use it")
	}
	bin, err := testenv.Bin("buildkitd")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	dir, err := os.MkdirTemp("", "wso2img-bk-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		buildkitd.Stop(dir)
		os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	opts := buildkitd.Options{StateDir: dir, Insecure: []string{"127.0.0.1:5000"}}
	c, err := buildkitd.Connect(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := c.ListWorkers(ctx)
	c.Close()
	if err != nil || len(ws) != 1 {
		t.Fatalf("workers %v, %v", ws, err)
	}
	pid := readPID(t, dir)
	conf, _ := os.ReadFile(filepath.Join(dir, "buildkitd.toml"))
	if !strings.Contains(string(conf), `[registry."127.0.0.1:5000"]`) {
		t.Errorf("the private daemon is not configured for the insecure registry:\n%s", conf)
	}

	c, err = buildkitd.Connect(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := readPID(t, dir); got != pid {
		t.Errorf("the second run started another daemon (%s, was %s) instead of reusing it", got, pid)
	}

	opts.Insecure = []string{"127.0.0.1:6000"}
	c, err = buildkitd.Connect(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := readPID(t, dir); got == pid {
		t.Errorf("a new insecure registry kept the daemon configured for the old one")
	}
}

func readPID(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "buildkitd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
