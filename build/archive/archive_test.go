package archive_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/build/archive"
	"github.com/wso2img/wso2img/build/inputs"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestExtractWritesTheTree(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		data  func(t *testing.T) []byte
		want  []archive.File
		links map[string]string
	}{{
		name: "zip with nested and implied directories",
		file: "app.car",
		data: func(t *testing.T) []byte {
			return zipBytes(t, []entry{
				dir("a/"), dir("a/b/"),
				file("a/b/c.xml", "<c/>", 0o644),
				file("a/run.sh", "#!/bin/sh\n", 0o755),
				file("x/y/z.txt", "implied parents", 0o600),
			})
		},
		want: []archive.File{
			{Rel: "a", Type: "dir", Mode: 0o755},
			{Rel: "a/b", Type: "dir", Mode: 0o755},
			{Rel: "a/b/c.xml", Type: "file", Mode: 0o644, Size: 4, SHA256: sum("<c/>")},
			{Rel: "a/run.sh", Type: "file", Mode: 0o755, Size: 10, SHA256: sum("#!/bin/sh\n")},
			{Rel: "x", Type: "dir", Mode: 0o755},
			{Rel: "x/y", Type: "dir", Mode: 0o755},
			{Rel: "x/y/z.txt", Type: "file", Mode: 0o600, Size: 15, SHA256: sum("implied parents")},
		},
	}, {
		name: "tar.gz with symlinks inside",
		file: "pack.tar.gz",
		data: func(t *testing.T) []byte {
			return tarBytes(t, []entry{
				dir("./"), dir("./conf/"),
				file("./conf/a.xml", "<a/>", 0o640),
				symlink("./current", "conf"),
				symlink("./conf/same.xml", "a.xml"),
				symlink("./up.xml", "conf/../conf/a.xml"),
			}, true)
		},
		want: []archive.File{
			{Rel: "conf", Type: "dir", Mode: 0o755},
			{Rel: "conf/a.xml", Type: "file", Mode: 0o640, Size: 4, SHA256: sum("<a/>")},
			{Rel: "conf/same.xml", Type: "symlink", Mode: 0o777, Target: "a.xml"},
			{Rel: "current", Type: "symlink", Mode: 0o777, Target: "conf"},
			{Rel: "up.xml", Type: "symlink", Mode: 0o777, Target: "conf/../conf/a.xml"},
		},
		links: map[string]string{"current": "conf", "conf/same.xml": "a.xml"},
	}, {
		name: "tar with a hard link to an earlier file",
		file: "pack.tar",
		data: func(t *testing.T) []byte {
			return tarBytes(t, []entry{file("lib/a.jar", "jar", 0o644), hardlink("lib/b.jar", "lib/a.jar")}, false)
		},
		want: []archive.File{
			{Rel: "lib", Type: "dir", Mode: 0o755},
			{Rel: "lib/a.jar", Type: "file", Mode: 0o644, Size: 3, SHA256: sum("jar")},
			{Rel: "lib/b.jar", Type: "file", Mode: 0o644, Size: 3, SHA256: sum("jar")},
		},
	}, {
		name: "setuid, setgid and sticky cleared",
		file: "bits.tar",
		data: func(t *testing.T) []byte {
			return tarBytes(t, []entry{
				{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
				file("tmp/suid", "x", 0o4755),
				file("tmp/sgid", "y", 0o2750),
			}, false)
		},
		want: []archive.File{
			{Rel: "tmp", Type: "dir", Mode: 0o755},
			{Rel: "tmp/sgid", Type: "file", Mode: 0o750, Size: 1, SHA256: sum("y")},
			{Rel: "tmp/suid", Type: "file", Mode: 0o755, Size: 1, SHA256: sum("x")},
		},
	}, {
		name: "zip setuid cleared, jar-style entries 0644",
		file: "bits.zip",
		data: func(t *testing.T) []byte {
			return zipBytes(t, []entry{
				file("bin/tool", "t", 0o4755),
				{name: "META-INF/MANIFEST.MF", typ: tar.TypeReg, body: "Manifest-Version: 1.0\n", dosZip: true},
				{name: `win\path.txt`, typ: tar.TypeReg, body: "w", dosZip: true},
			})
		},
		want: []archive.File{
			{Rel: "META-INF", Type: "dir", Mode: 0o755},
			{Rel: "META-INF/MANIFEST.MF", Type: "file", Mode: 0o644, Size: 22, SHA256: sum("Manifest-Version: 1.0\n")},
			{Rel: "bin", Type: "dir", Mode: 0o755},
			{Rel: "bin/tool", Type: "file", Mode: 0o755, Size: 1, SHA256: sum("t")},
			{Rel: "win", Type: "dir", Mode: 0o755},
			{Rel: "win/path.txt", Type: "file", Mode: 0o644, Size: 1, SHA256: sum("w")},
		},
	}, {
		name: "a directory named twice",
		file: "dirs.zip",
		data: func(t *testing.T) []byte {
			return zipBytes(t, []entry{dir("d/"), file("d/f", "f", 0o644), dir("d/")})
		},
		want: []archive.File{
			{Rel: "d", Type: "dir", Mode: 0o755},
			{Rel: "d/f", Type: "file", Mode: 0o644, Size: 1, SHA256: sum("f")},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := writeArchive(t, tt.file, tt.data(t))
			parent, dst := newDest(t)
			res, err := archive.Extract(context.Background(), src, dst, archive.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Files, tt.want) {
				t.Fatalf("files:\n got %+v\nwant %+v", res.Files, tt.want)
			}
			var size int64
			for _, f := range tt.want {
				size += f.Size
			}
			if res.Size != size {
				t.Errorf("size %d, want %d", res.Size, size)
			}
			checkDisk(t, dst, res.Files)
			for link, target := range tt.links {
				got, err := os.Readlink(filepath.Join(dst, link))
				if err != nil || got != target {
					t.Errorf("readlink %s = %q, %v; want %q", link, got, err, target)
				}
			}
			onlyDest(t, parent)
			// The digest is the one build/inputs gives the same tree as a directory.
			if want := dirDigest(t, parent, dst); res.Digest != want {
				t.Errorf("digest %s, but build/inputs digests the extracted tree as %s", res.Digest, want)
			}
		})
	}
}

// TestExtractHardLinkCopiesTheFile: a hard link to an earlier file becomes a copy of
// it, so that the tree holds one name per file, as wso2img's local inputs must.
func TestExtractHardLinkCopiesTheFile(t *testing.T) {
	src := writeArchive(t, "l.tar", tarBytes(t, []entry{file("a", "data", 0o644), hardlink("b", "a")}, false))
	_, dst := newDest(t)
	if _, err := archive.Extract(context.Background(), src, dst, archive.Options{}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(filepath.Join(dst, "a"))
	b, _ := os.Stat(filepath.Join(dst, "b"))
	data, _ := os.ReadFile(filepath.Join(dst, "b"))
	if a == nil || b == nil || os.SameFile(a, b) || string(data) != "data" || b.Mode().Perm() != 0o644 {
		t.Fatalf("b is not a separate copy of a: %v, %v, %q", a, b, data)
	}
}

func TestExtractRefuses(t *testing.T) {
	z := func(es ...entry) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return zipBytes(t, es) }
	}
	tr := func(es ...entry) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return tarBytes(t, es, false) }
	}
	tgz := func(es ...entry) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return tarBytes(t, es, true) }
	}
	tests := []struct {
		name  string
		data  func(t *testing.T) []byte
		what  string
		entry string
		found string // a part of Found
	}{
		{"zip slip", z(file("ok.txt", "ok", 0o644), file("../../etc/passwd", "root::0:0", 0o644)), archive.WhatPath, "../../etc/passwd", `".." element`},
		{"zip slip in the middle", z(file("a/../../b", "x", 0o644)), archive.WhatPath, "a/../../b", `".." element`},
		{"windows zip slip", z(file(`..\..\evil.bat`, "x", 0o644)), archive.WhatPath, `..\..\evil.bat`, `".." element`},
		{"windows drive", z(file(`C:\evil.bat`, "x", 0o644)), archive.WhatPath, `C:\evil.bat`, "drive letter"},
		{"absolute zip", z(file("/etc/passwd", "x", 0o644)), archive.WhatPath, "/etc/passwd", "absolute path"},
		{"absolute tar", tr(file("/etc/cron.d/x", "x", 0o644)), archive.WhatPath, "/etc/cron.d/x", "absolute path"},
		{"tar slip", tgz(file("../x", "x", 0o644)), archive.WhatPath, "../x", `".." element`},
		{"symlink up", tgz(symlink("l", "../../..")), archive.WhatSymlink, "l", "l -> ../../.., which leaves it"},
		{"symlink up from below", tr(dir("a/"), symlink("a/l", "../../x")), archive.WhatSymlink, "a/l", "leaves it"},
		{"symlink absolute", tr(symlink("etc", "/etc")), archive.WhatSymlink, "etc", "absolute target"},
		{"zip symlink absolute", z(symlink("passwd", "/etc/passwd")), archive.WhatSymlink, "passwd", "absolute target"},
		{"symlink chain ending outside", tr(symlink("y", "x/../etc"), symlink("x", ".")), archive.WhatSymlink, "y", "through x -> ."},
		{"symlink chain through a later link", z(symlink("a", "d/e/.."), dir("d/"), symlink("d/e", "..")), archive.WhatSymlink, "a", "a -> d/e/.., which leaves it through d/e -> .."},
		{"symlink loop", tr(symlink("a", "b"), symlink("b", "a")), archive.WhatSymlink, "", "loops"},
		{"entry through a symlink", tr(dir("sub/"), symlink("l", "sub"), file("l/f", "x", 0o644)), archive.WhatSymlink, "l/f", "below the symlink l -> sub"},
		{"hard link outside", tr(hardlink("h", "../../etc/shadow")), archive.WhatHardLink, "h", "outside the destination"},
		{"hard link absolute", tr(hardlink("h", "/etc/shadow")), archive.WhatHardLink, "h", "outside the destination"},
		{"hard link to nothing", tr(hardlink("h", "later"), file("later", "x", 0o644)), archive.WhatHardLink, "h", "nothing extracted before it"},
		{"hard link to a directory", tr(dir("d/"), hardlink("h", "d")), archive.WhatHardLink, "h", "a directory"},
		{"hard link to a symlink", tr(file("f", "x", 0o644), symlink("s", "f"), hardlink("h", "s")), archive.WhatHardLink, "h", "a symlink"},
		{"char device", tr(entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666}), archive.WhatSpecial, "dev/null", "character device"},
		{"block device", tr(entry{name: "sda", typ: tar.TypeBlock, mode: 0o660}), archive.WhatSpecial, "sda", "block device"},
		{"fifo", tgz(entry{name: "pipe", typ: tar.TypeFifo, mode: 0o644}), archive.WhatSpecial, "pipe", "fifo"},
		{"zip char device", z(entry{name: "tty", typ: tar.TypeChar, mode: 0o620}), archive.WhatSpecial, "tty", "character device"},
		{"zip socket", z(entry{name: "sock", typ: 's', mode: 0o755}), archive.WhatSpecial, "sock", "socket"},
		{"zip fifo", z(entry{name: "p", typ: tar.TypeFifo, mode: 0o644}), archive.WhatSpecial, "p", "fifo"},
		{"duplicate file", z(file("a.txt", "one", 0o644), file("a.txt", "two", 0o644)), archive.WhatDuplicate, "a.txt", `a.txt already extracted as a file by entry "a.txt"`},
		{"file then directory", z(file("a", "x", 0o644), dir("a/")), archive.WhatDuplicate, "a/", "already extracted as a file"},
		{"directory then file", tr(dir("a/"), file("a", "x", 0o644)), archive.WhatDuplicate, "a", "already extracted as a directory"},
		{"implied directory then file", tr(file("a/b", "x", 0o644), file("a", "x", 0o644)), archive.WhatDuplicate, "a", "implied by an earlier entry"},
		{"file below a file", tr(file("a", "x", 0o644), file("a/b", "x", 0o644)), archive.WhatDuplicate, "a/b", "which is a file"},
		{"symlink and file", tr(symlink("a", "b"), file("a", "x", 0o644)), archive.WhatDuplicate, "a", "already extracted as a symlink"},
		{"a file naming the destination", tr(file(".", "x", 0o644)), archive.WhatPath, ".", "naming the destination itself"},
		{"unknown tar type", tr(entry{name: "v", typ: 'V'}), archive.WhatUnsupported, "v", "tar entry type"},
		{"text file", func(*testing.T) []byte { return []byte("<html>not found</html>") }, archive.WhatFormat, "", "HTML or XML"},
		{"bzip2", func(*testing.T) []byte { return []byte("BZh91AY&SY") }, archive.WhatFormat, "", "bzip2 data"},
		{"empty file", func(*testing.T) []byte { return nil }, archive.WhatFormat, "", "an empty file"},
		{"gzip that is not a tar", func(t *testing.T) []byte {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write([]byte("just text, compressed"))
			zw.Close()
			return b.Bytes()
		}, archive.WhatFormat, "", "gzip-compressed data that is not a tar archive"},
		{"truncated tar.gz", func(t *testing.T) []byte {
			b := tarBytes(t, []entry{file("a", strings.Repeat("abc", 10000), 0o644), file("b", "b", 0o644)}, true)
			return b[:len(b)/2]
		}, archive.WhatCorrupt, "", ""},
		{"zip with a wrong crc", func(t *testing.T) []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			h := &zip.FileHeader{Name: "f", Method: zip.Store, CRC32: 1, CompressedSize64: 3, UncompressedSize64: 3}
			w, _ := zw.CreateRaw(h)
			w.Write([]byte("abc"))
			zw.Close()
			return buf.Bytes()
		}, archive.WhatCorrupt, "f", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := writeArchive(t, "in", tt.data(t))
			parent, dst := newDest(t)
			res, err := archive.Extract(context.Background(), src, dst, archive.Options{Name: "https://h/in"})
			ae := asError(t, err, tt.what)
			if res != nil {
				t.Errorf("a refused archive returned a result: %+v", res)
			}
			if tt.entry != "" && ae.Entry != tt.entry {
				t.Errorf("entry %q, want %q (%v)", ae.Entry, tt.entry, err)
			}
			if !strings.Contains(ae.Found, tt.found) {
				t.Errorf("found %q, want it to contain %q", ae.Found, tt.found)
			}
			if !strings.HasPrefix(err.Error(), "archive https://h/in") {
				t.Errorf("the error does not name the archive: %v", err)
			}
			empty(t, dst)
			onlyDest(t, parent)
		})
	}
}

func TestExtractLimits(t *testing.T) {
	many := func(n int) []entry {
		es := make([]entry, n)
		for i := range es {
			es[i] = entry{name: "f/" + itoa(i), typ: tar.TypeReg, mode: 0o644, store: true}
		}
		return es
	}
	incompressible := make([]byte, 3<<20)
	for i := range incompressible {
		incompressible[i] = byte(i*7919 + i>>8*31)
	}
	tests := []struct {
		name  string
		data  func(t *testing.T) []byte
		opts  archive.Options
		what  string
		found string
	}{
		{"100 000 tiny zip entries", func(t *testing.T) []byte { return zipBytes(t, many(100_000)) }, archive.Options{}, archive.WhatEntries, "100000 entries"},
		{"100 000 tiny tar entries", func(t *testing.T) []byte { return tarBytes(t, many(100_000), false) }, archive.Options{}, archive.WhatEntries, `entry "f/10000": entry count: expected at most 10000 entries, found more`},
		{"entry limit option", func(t *testing.T) []byte { return tarBytes(t, many(11), true) }, archive.Options{MaxEntries: 10}, archive.WhatEntries, "more"},
		{"total size", func(t *testing.T) []byte {
			return zipBytes(t, []entry{file("a", string(incompressible[:2<<20]), 0o644), file("b", string(incompressible[2<<20:]), 0o644)})
		}, archive.Options{MaxSize: 2<<20 + 1000}, archive.WhatSize, "more"},
		{"zip bomb: 1 GiB of zeros", func(t *testing.T) []byte { return zipBomb(t, 1024, 1<<30) }, archive.Options{}, archive.WhatRatio, "for an entry"},
		{"zip bomb declaring 1 kB", func(t *testing.T) []byte { return zipBomb(t, 1024, 1000) }, archive.Options{}, archive.WhatRatio, ""},
		{"tar.gz bomb: 1 GiB of zeros", func(t *testing.T) []byte { return tarGzBomb(t, 1024) }, archive.Options{}, archive.WhatRatio, ""},
		{"many small compressible files", func(t *testing.T) []byte { return zipZeros(t, 40, 1, 1<<20) }, archive.Options{RatioAfter: 4 << 20}, archive.WhatRatio, "for the archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := writeArchive(t, "in", tt.data(t))
			_, dst := newDest(t)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := archive.Extract(context.Background(), src, dst, tt.opts)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			asError(t, err, tt.what)
			if !strings.Contains(err.Error(), tt.found) {
				t.Errorf("got %q, want it to contain %q", err, tt.found)
			}
			// Bounded: nothing is held in memory whole, and a bomb is stopped early.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("extracting allocated %d MiB", alloc>>20)
			}
			t.Logf("refused in %v: %v", took, err)
			empty(t, dst)
		})
	}
}

func TestExtractBombBelowTheLimitsIsFine(t *testing.T) {
	// Zeros compress about 1000:1; below RatioAfter that is not a bomb.
	src := writeArchive(t, "z.zip", zipBomb(t, 4, 4<<20))
	_, dst := newDest(t)
	res, err := archive.Extract(context.Background(), src, dst, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != 4<<20 {
		t.Fatalf("size %d", res.Size)
	}
}

func TestExtractFormat(t *testing.T) {
	files := []entry{file("a.txt", "a", 0o644)}
	zipped := zipBytes(t, files)
	sfx := append([]byte("#!/bin/sh\nexit 0\n"), zipped...) // a self-extracting zip
	tests := []struct {
		name   string
		data   []byte
		format archive.Format
		want   archive.Format
	}{
		{"zip", zipped, "", archive.Zip},
		{"tar", tarBytes(t, files, false), "", archive.Tar},
		{"tar.gz", tarBytes(t, files, true), "", archive.TarGz},
		{"explicit zip with a prefix", sfx, archive.Zip, archive.Zip},
		{"empty zip", zipBytes(t, nil), "", archive.Zip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dst := newDest(t)
			res, err := archive.Extract(context.Background(), writeArchive(t, "in", tt.data), dst, archive.Options{Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != tt.want {
				t.Errorf("format %q, want %q", res.Format, tt.want)
			}
		})
	}
	t.Run("a self-extracting zip is not detected", func(t *testing.T) {
		_, dst := newDest(t)
		_, err := archive.Extract(context.Background(), writeArchive(t, "in", sfx), dst, archive.Options{})
		asError(t, err, archive.WhatFormat)
	})
}

func TestExtractDestination(t *testing.T) {
	src := writeArchive(t, "a.zip", zipBytes(t, []entry{file("a", "a", 0o644)}))
	_, dst := newDest(t)
	os.WriteFile(filepath.Join(dst, "left-over"), nil, 0o644)
	_, err := archive.Extract(context.Background(), src, dst, archive.Options{})
	var ae *archive.Error
	if err == nil || errors.As(err, &ae) || !strings.Contains(err.Error(), `must be an empty directory, found "left-over"`) {
		t.Fatalf("a non-empty destination: %v", err)
	}
	_, err = archive.Extract(context.Background(), src, filepath.Join(dst, "missing"), archive.Options{})
	if err == nil || !strings.Contains(err.Error(), "existing empty directory") {
		t.Fatalf("a missing destination: %v", err)
	}
}

func TestExtractModTime(t *testing.T) {
	src := writeArchive(t, "a.tar", tarBytes(t, []entry{dir("d/"), file("d/f", "x", 0o644), file("g/h", "y", 0o644)}, false))
	_, dst := newDest(t)
	when := time.Date(2019, 8, 15, 7, 47, 53, 0, time.UTC)
	if _, err := archive.Extract(context.Background(), src, dst, archive.Options{ModTime: when}); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"d", "d/f", "g", "g/h"} {
		fi, err := os.Stat(filepath.Join(dst, rel))
		if err != nil || !fi.ModTime().Equal(when) {
			t.Errorf("%s: mtime %v, %v; want %v", rel, fi.ModTime(), err, when)
		}
	}
}

func TestExtractCanceled(t *testing.T) {
	src := writeArchive(t, "a.zip", zipBytes(t, []entry{file("a", "a", 0o644)}))
	_, dst := newDest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := archive.Extract(ctx, src, dst, archive.Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	empty(t, dst)
}

func asError(t *testing.T, err error, what string) *archive.Error {
	t.Helper()
	var ae *archive.Error
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an *archive.Error about %q", err, what)
	}
	if ae.What != what {
		t.Fatalf("got %q (%v), want %q", ae.What, err, what)
	}
	return ae
}

// checkDisk checks that the tree on disk is exactly the listing: types, modes,
// contents, and no setuid, setgid or sticky bit anywhere.
func checkDisk(t *testing.T, dst string, files []archive.File) {
	t.Helper()
	want := map[string]archive.File{}
	for _, f := range files {
		want[f.Rel] = f
	}
	err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dst {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		f, ok := want[filepath.ToSlash(rel)]
		if !ok {
			t.Errorf("%s is on disk but not listed", rel)
			return nil
		}
		delete(want, f.Rel)
		fi, _ := d.Info()
		m := fi.Mode()
		if m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			t.Errorf("%s has mode %v", rel, m)
		}
		switch f.Type {
		case "dir":
			if !m.IsDir() || m.Perm() != f.Mode {
				t.Errorf("%s: mode %v, want a directory %v", rel, m, f.Mode)
			}
		case "file":
			b, _ := os.ReadFile(p)
			if !m.IsRegular() || m.Perm() != f.Mode || sum(string(b)) != f.SHA256 {
				t.Errorf("%s: mode %v, sha256 %s; want a file %v %s", rel, m, sum(string(b)), f.Mode, f.SHA256)
			}
		case "symlink":
			if m&fs.ModeSymlink == 0 {
				t.Errorf("%s: mode %v, want a symlink", rel, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel := range want {
		t.Errorf("%s is listed but not on disk", rel)
	}
}

// dirDigest is build/inputs' digest of dst as a local directory input.
func dirDigest(t *testing.T, root, dst string) string {
	t.Helper()
	f, err := inputs.New(inputs.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Fetch(context.Background(), inputs.Spec{Profile: "p", Field: "inputs[0]", Path: dst, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return v.Digest
}

func empty(t *testing.T, dst string) {
	t.Helper()
	names, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("the destination holds %d entries after a refusal, e.g. %s", len(names), names[0].Name())
	}
}

// onlyDest checks that nothing was written beside the destination.
func onlyDest(t *testing.T, parent string) {
	t.Helper()
	names, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0].Name() != "dst" {
		t.Errorf("%s holds %v, want only dst", parent, names)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
