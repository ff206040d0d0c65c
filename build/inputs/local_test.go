//go:build unix

package inputs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/internal/testpgp"
)

// tree makes files, directories and symlinks under dir. A key ending in "/" is a
// directory; a value starting with "->" is a symlink to the rest; "|fifo" is a named
// pipe. Modes are set explicitly so the umask does not matter.
func tree(t testing.TB, dir string, entries map[string]string) {
	t.Helper()
	for name, v := range entries {
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(name, "/")))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			if err = os.MkdirAll(p, 0o755); err == nil {
				err = os.Chmod(p, 0o755)
			}
		case strings.HasPrefix(v, "->"):
			err = os.Symlink(strings.TrimPrefix(v, "->"), p)
		case v == "|fifo":
			err = syscall.Mkfifo(p, 0o644)
		default:
			if err = os.WriteFile(p, []byte(v), 0o644); err == nil {
				err = os.Chmod(p, 0o644)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestFetchLocal(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "profile")
	toml := "[server]\nhostname = \"localhost\"\n"
	tree(t, top, map[string]string{
		"outside/secret":             "s3cret",
		"profile/conf/deploy.toml":   toml,
		"profile/conf/link.toml":     "->deploy.toml",
		"profile/escape-abs.toml":    "->" + filepath.Join(top, "outside/secret"),
		"profile/escape-rel.toml":    "->../outside/secret",
		"profile/dangling.toml":      "->nothing-here",
		"profile/pipe":               "|fifo",
		"profile/lib/a.jar":          "a",
		"profile/lib/sub/b.txt":      "bb",
		"profile/lib/sub/link":       "->../a.jar",
		"profile/lib/empty/":         "",
		"profile/lib/sub/":           "",
		"profile/lib-rel/x.jar":      "x",
		"profile/lib-rel/out":        "->../../outside/secret",
		"profile/lib-abs/x.jar":      "x",
		"profile/lib-abs/out":        "->/etc/passwd",
		"profile/lib-hop/in":         "->../conf",
		"profile/lib-hop/hop":        "->../escape-rel.toml",
		"profile/lib-dangling/ghost": "->../nothing/at/all",
		"profile/lib-pipe/f":         "|fifo",
		"rootlink":                   "->profile",
	})
	if err := os.Chmod(filepath.Join(root, "conf/deploy.toml"), 0o640); err != nil {
		t.Fatal(err)
	}
	at := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
	vendor := testpgp.NewKey(t, "vendor")
	kr := loadKeyring(t, testpgp.ArmoredPublic(t, vendor), testpgp.Fingerprint(vendor))
	tomlSum := sha256hex([]byte(toml))

	for _, tc := range []struct {
		name  string
		spec  inputs.Spec
		local string // want success: Local is a staged copy of this
		files []inputs.File
		what  string   // want a VerifyError about this
		plain bool     // want a plain error
		has   []string // in the error
	}{
		{name: "file", spec: inputs.Spec{Path: at("conf/deploy.toml")}, local: at("conf/deploy.toml"),
			files: []inputs.File{{Rel: "deploy.toml", Type: "file", Mode: 0o640, Size: int64(len(toml)), SHA256: tomlSum}}},
		{name: "file with its sha256", spec: inputs.Spec{Path: at("conf/deploy.toml"), SHA256: tomlSum}, local: at("conf/deploy.toml")},
		{name: "file with its sha512", spec: inputs.Spec{Path: at("conf/deploy.toml"), SHA512: sha512hex([]byte(toml))}, local: at("conf/deploy.toml")},
		{name: "symlink inside the folder", spec: inputs.Spec{Path: at("conf/link.toml")}, local: at("conf/deploy.toml"),
			files: []inputs.File{{Rel: "link.toml", Type: "file", Mode: 0o640, Size: int64(len(toml)), SHA256: tomlSum}}},
		{name: "profile folder through a symlink", spec: inputs.Spec{Path: filepath.Join(top, "rootlink/conf/deploy.toml"), Root: filepath.Join(top, "rootlink")}, local: at("conf/deploy.toml")},
		{name: "directory", spec: inputs.Spec{Path: at("lib")}, local: at("lib"), files: []inputs.File{
			{Rel: "a.jar", Type: "file", Mode: 0o644, Size: 1, SHA256: sha256hex([]byte("a"))},
			{Rel: "empty", Type: "dir", Mode: 0o755},
			{Rel: "sub", Type: "dir", Mode: 0o755},
			{Rel: "sub/b.txt", Type: "file", Mode: 0o644, Size: 2, SHA256: sha256hex([]byte("bb"))},
			{Rel: "sub/link", Type: "symlink", Mode: 0o777, Target: "../a.jar"},
		}},
		{name: "directory with a symlink out through another symlink", spec: inputs.Spec{Path: at("lib-hop")}, what: "symlink",
			has: []string{"hop -> ../escape-rel.toml, which resolves to " + filepath.Join(top, "outside/secret")}},
		{name: "directory with a dangling symlink inside", spec: inputs.Spec{Path: at("lib-dangling")}, local: at("lib-dangling")},

		{name: "sha256 mismatch", spec: inputs.Spec{Path: at("conf/deploy.toml"), SHA256: sha256hex([]byte("x"))}, what: "sha256",
			has: []string{"expected " + sha256hex([]byte("x")) + ", found " + tomlSum}},
		{name: "malformed sha256", spec: inputs.Spec{Path: at("conf/deploy.toml"), SHA256: "123"}, what: "checksum"},
		{name: "missing", spec: inputs.Spec{Path: at("conf/missing.toml")}, what: "local file",
			has: []string{"expected a file or directory, found nothing at " + at("conf/missing.toml")}},
		{name: "dangling symlink", spec: inputs.Spec{Path: at("dangling.toml")}, what: "local file", has: []string{"a symlink to nothing-here, which does not exist"}},
		{name: "symlink out, absolute", spec: inputs.Spec{Path: at("escape-abs.toml")}, what: "symlink",
			has: []string{"resolves to " + filepath.Join(top, "outside/secret"), "inside the profile folder " + root}},
		{name: "symlink out, relative", spec: inputs.Spec{Path: at("escape-rel.toml")}, what: "symlink", has: []string{"resolves to " + filepath.Join(top, "outside/secret")}},
		{name: "path outside the folder", spec: inputs.Spec{Path: filepath.Join(top, "outside/secret")}, what: "local file", has: []string{"a path inside the profile folder"}},
		{name: "path with .. out of the folder", spec: inputs.Spec{Path: root + "/../outside/secret"}, what: "local file", has: []string{"a path inside the profile folder"}},
		{name: "named pipe", spec: inputs.Spec{Path: at("pipe")}, what: "local file", has: []string{"expected a regular file or directory, found a named pipe (fifo)"}},
		{name: "directory with a symlink out, relative", spec: inputs.Spec{Path: at("lib-rel")}, what: "symlink",
			has: []string{"out -> ../../outside/secret, which resolves to " + filepath.Join(top, "outside/secret")}},
		{name: "directory with a symlink out, absolute", spec: inputs.Spec{Path: at("lib-abs")}, what: "symlink", has: []string{"out -> /etc/passwd"}},
		{name: "directory with a named pipe", spec: inputs.Spec{Path: at("lib-pipe")}, what: "local file", has: []string{"found a named pipe (fifo) at f"}},
		{name: "directory with a checksum", spec: inputs.Spec{Path: at("lib"), SHA256: sha256hex([]byte("a"))}, plain: true, has: []string{"a directory cannot have a checksum or a signature"}},
		{name: "directory with a signature", spec: inputs.Spec{Path: at("lib"), Signature: at("lib.asc"), Keyring: kr}, plain: true, has: []string{"a directory cannot have a checksum or a signature"}},
		{name: "relative path", spec: inputs.Spec{Path: "conf/deploy.toml"}, plain: true, has: []string{"must be absolute"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			s.Profile, s.Field = "wso2is", "inputs[5]"
			if s.Root == "" {
				s.Root = root
			}
			f := newFetcher(t, inputs.Options{})
			st := newStage(t, f)
			v, err := st.Fetch(context.Background(), s)
			switch {
			case tc.what != "":
				wantVerifyError(t, err, tc.what, append(tc.has, `profile "wso2is", inputs[5] (`+s.Path+")")...)
				return
			case tc.plain:
				var ve *inputs.VerifyError
				if errors.As(err, &ve) {
					t.Errorf("error = %v, a VerifyError; want a plain error", err)
				}
				wantContains(t, err, append(tc.has, `profile "wso2is", inputs[5]`)...)
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if !strings.HasPrefix(v.Local, st.Dir()+string(filepath.Separator)) {
				t.Errorf("Local = %s, want a copy in the stage %s", v.Local, st.Dir())
			}
			sameTree(t, tc.local, v.Local)
			if tc.files != nil && !reflect.DeepEqual(v.Files, tc.files) {
				t.Errorf("Files =\n%+v\nwant\n%+v", v.Files, tc.files)
			}
			var size int64
			for _, e := range v.Files {
				size += e.Size
			}
			if v.Size != size {
				t.Errorf("Size = %d, want the sum of the files' sizes, %d", v.Size, size)
			}
		})
	}
}

// TestDirDigestListing pins the documented listing format: a change to it changes
// every directory input's digest, and must be deliberate.
func TestDirDigestListing(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{"conf/a/": "", "conf/a/x": "hi", "conf/a-b": "", "conf/l": "->a/x", "conf/s p a c e": "!"})
	if err := os.Chmod(filepath.Join(root, "conf/a-b"), os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	v, err := newFetcher(t, inputs.Options{}).Fetch(context.Background(), inputs.Spec{Profile: "p", Field: "inputs[0]", Path: filepath.Join(root, "conf"), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	listing := "dir 0755 \"a\"\n" +
		"file 4755 0 " + sha256hex(nil) + " \"a-b\"\n" +
		"file 0644 2 " + sha256hex([]byte("hi")) + " \"a/x\"\n" +
		"symlink \"a/x\" \"l\"\n" +
		"file 0644 1 " + sha256hex([]byte("!")) + " \"s p a c e\"\n"
	sum := sha256.Sum256([]byte(listing))
	if want := "sha256:" + hex.EncodeToString(sum[:]); v.Digest != want {
		t.Errorf("Digest = %s, want %s, the sha256 of\n%s", v.Digest, want, listing)
	}
	var rels []string
	for _, e := range v.Files {
		rels = append(rels, e.Rel)
	}
	if want := []string{"a", "a-b", "a/x", "l", "s p a c e"}; !reflect.DeepEqual(rels, want) {
		t.Errorf("Files in order %q, want %q", rels, want)
	}
	if v.Size != 3 {
		t.Errorf("Size = %d, want 3", v.Size)
	}
}

func TestDirDigest(t *testing.T) {
	base := map[string]string{
		"lib/a.jar":     "aaaa",
		"lib/sub/b.xml": "<b/>",
		"lib/sub/link":  "->../a.jar",
		"lib/sub/":      "",
	}
	digest := func(t *testing.T, change func(dir string)) string {
		t.Helper()
		root := t.TempDir()
		tree(t, root, base)
		if change != nil {
			change(filepath.Join(root, "lib"))
		}
		v, err := newFetcher(t, inputs.Options{}).Fetch(context.Background(), inputs.Spec{Profile: "p", Field: "inputs[0]", Path: filepath.Join(root, "lib"), Root: root})
		if err != nil {
			t.Fatal(err)
		}
		if !v.Dir {
			t.Fatal("Dir = false for a directory")
		}
		return v.Digest
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := digest(t, nil)
	for _, tc := range []struct {
		name    string
		change  func(dir string)
		differs bool
	}{
		{"same tree, another place and time", func(string) {}, false},
		{"mtimes changed", func(dir string) {
			old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			for _, p := range []string{"a.jar", "sub", "sub/b.xml", "."} {
				must(os.Chtimes(filepath.Join(dir, p), old, old))
			}
		}, false},
		{"a byte changed", func(dir string) { must(os.WriteFile(filepath.Join(dir, "a.jar"), []byte("aaab"), 0o644)) }, true},
		{"a file renamed", func(dir string) { must(os.Rename(filepath.Join(dir, "sub/b.xml"), filepath.Join(dir, "sub/c.xml"))) }, true},
		{"a file's mode changed", func(dir string) { must(os.Chmod(filepath.Join(dir, "a.jar"), 0o600)) }, true},
		{"setuid added", func(dir string) { must(os.Chmod(filepath.Join(dir, "a.jar"), os.ModeSetuid|0o644)) }, true},
		{"a directory's mode changed", func(dir string) { must(os.Chmod(filepath.Join(dir, "sub"), 0o700)) }, true},
		{"a symlink's target changed", func(dir string) {
			must(os.Remove(filepath.Join(dir, "sub/link")))
			must(os.Symlink("b.xml", filepath.Join(dir, "sub/link")))
		}, true},
		{"an empty directory added", func(dir string) { must(os.Mkdir(filepath.Join(dir, "empty"), 0o755)) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := digest(t, tc.change)
			if (got != want) != tc.differs {
				t.Errorf("digest %s, unchanged tree %s: want them to differ: %v", got, want, tc.differs)
			}
		})
	}
}
