package build

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

func TestGitSource(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if src, rev := gitSource(context.Background(), dir); src != "" || rev != "" {
		t.Errorf("outside git: %q %q", src, rev)
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "x")
	git("remote", "add", "origin", "https://user:token@github.com/acme/wso2-images.git")
	src, rev := gitSource(context.Background(), dir)
	if rev != git("rev-parse", "HEAD") {
		t.Errorf("revision %q", rev)
	}
	if src != "https://github.com/acme/wso2-images.git" {
		t.Errorf("source %q: want the origin without its credentials", src)
	}
}
