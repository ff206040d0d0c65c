package archive_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/build/archive"
)

// FuzzExtract holds the package's promise for any bytes: either an error (and an
// empty destination), or a tree that stays inside the destination, with no setuid,
// setgid or sticky bit, no special file, every symlink resolving inside, nothing
// written beside it, and a listing that is exactly what is on disk.
func FuzzExtract(f *testing.F) {
	seeds := [][]entry{
		{dir("a/"), file("a/b.txt", "b", 0o644), symlink("a/l", "b.txt")},
		{file("../../etc/passwd", "x", 0o644)},
		{symlink("l", "../.."), file("f", "f", 0o4755)},
		{symlink("x", "."), symlink("y", "x/../etc")},
		{file("a", "a", 0o644), hardlink("b", "a")},
		{file(`..\evil`, "x", 0o644)},
	}
	for _, s := range seeds {
		f.Add(zipBytes(f, s))
		f.Add(tarBytes(f, s, false))
		f.Add(tarBytes(f, s, true))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// An extraction must end: a hang fails with every goroutine's stack.
		watchdog := time.AfterFunc(30*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic("Extract hung:\n" + string(buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		src := filepath.Join(t.TempDir(), "in")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		res, err := archive.Extract(context.Background(), src, dst, archive.Options{MaxEntries: 200, MaxSize: 4 << 20, RatioAfter: 1 << 20})
		if names, _ := os.ReadDir(parent); len(names) != 1 {
			t.Fatalf("something was written beside the destination: %v", names)
		}
		if err != nil {
			var ae *archive.Error
			if !errors.As(err, &ae) {
				t.Fatalf("not an *archive.Error: %v", err)
			}
			if names, _ := os.ReadDir(dst); len(names) != 0 {
				t.Fatalf("a refused archive left %v", names)
			}
			return
		}
		listed := map[string]archive.File{}
		for _, f := range res.Files {
			listed[f.Rel] = f
		}
		realDst, _ := filepath.EvalSymlinks(dst)
		err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == dst {
				return err
			}
			rel, _ := filepath.Rel(dst, p)
			if _, ok := listed[filepath.ToSlash(rel)]; !ok {
				t.Errorf("%s is on disk but not listed", rel)
			}
			delete(listed, filepath.ToSlash(rel))
			fi, err := d.Info()
			if err != nil {
				return err
			}
			m := fi.Mode()
			if m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("%s has mode %v", rel, m)
			}
			if !m.IsRegular() && !m.IsDir() && m&fs.ModeSymlink == 0 {
				t.Errorf("%s is a special file: %v", rel, m)
			}
			if m&fs.ModeSymlink != 0 {
				if r, err := filepath.EvalSymlinks(p); err == nil && !inside(realDst, r) {
					t.Errorf("%s resolves to %s, outside %s", rel, r, realDst)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for rel := range listed {
			t.Errorf("%s is listed but not on disk", rel)
		}
	})
}

func inside(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}
