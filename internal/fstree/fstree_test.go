package fstree_test

import (
	"io/fs"
	"testing"

	"github.com/wso2img/wso2img/internal/fstree"
)

func TestDigest(t *testing.T) {
	a := []fstree.Entry{
		{Rel: "lib/x.jar", Type: "file", Mode: 0o644, Size: 3, SHA256: "aa"},
		{Rel: "lib", Type: "dir", Mode: 0o755},
		{Rel: "lib/y", Type: "symlink", Target: "x.jar"},
	}
	b := []fstree.Entry{a[2], a[0], a[1]}
	if fstree.Digest(a) != fstree.Digest(b) {
		t.Error("the digest depends on the entries' order")
	}
	for name, change := range map[string]func([]fstree.Entry){
		"mode":     func(e []fstree.Entry) { e[1].Mode = 0o600 },
		"setuid":   func(e []fstree.Entry) { e[1].Mode |= fs.ModeSetuid },
		"content":  func(e []fstree.Entry) { e[1].SHA256 = "bb" },
		"target":   func(e []fstree.Entry) { e[2].Target = "z" },
		"name":     func(e []fstree.Entry) { e[1].Rel = "lib/x.jar\n" },
		"dir mode": func(e []fstree.Entry) { e[0].Mode = 0o700 },
	} {
		c := append([]fstree.Entry(nil), a...)
		fstree.Digest(c) // sorted: lib, lib/x.jar, lib/y
		before := fstree.Digest(c)
		change(c)
		if fstree.Digest(c) == before {
			t.Errorf("changing the %s keeps the digest", name)
		}
	}
	if got := fstree.Octal(0o755 | fs.ModeSetuid | fs.ModeSticky); got != "5755" {
		t.Errorf("Octal = %s", got)
	}
	if got := fstree.Kind(fs.ModeNamedPipe); got != "a named pipe (fifo)" {
		t.Errorf("Kind = %s", got)
	}
}
