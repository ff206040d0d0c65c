package archive_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// entry is one entry of an archive a test builds.
type entry struct {
	name string
	// typ is a tar type flag; zips map it to modes.
	typ  byte
	mode int64 // unix mode bits, with 04000/02000/01000 for setuid/setgid/sticky
	body string
	link string // symlink or hard link target
	// dosZip writes a zip entry as Java's jar tool does: no unix mode.
	dosZip bool
	// store writes a zip entry uncompressed (cheap for many tiny entries).
	store bool
}

func file(name, body string, mode int64) entry {
	return entry{name: name, typ: tar.TypeReg, mode: mode, body: body}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, mode: 0o644, link: target}
}

// fileMode turns mode bits and a tar type into an fs.FileMode, for zip.SetMode.
func (e entry) fileMode() fs.FileMode {
	m := fs.FileMode(e.mode & 0o777)
	if e.mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if e.mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if e.mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch e.typ {
	case tar.TypeDir:
		m |= fs.ModeDir
	case tar.TypeSymlink:
		m |= fs.ModeSymlink
	case tar.TypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case tar.TypeBlock:
		m |= fs.ModeDevice
	case tar.TypeFifo:
		m |= fs.ModeNamedPipe
	case 's':
		m |= fs.ModeSocket
	}
	return m
}

func zipBytes(t testing.TB, entries []entry) []byte {
	t.Helper()
	buf := bytes.NewBuffer(make([]byte, 0, 100*len(entries)))
	zw := zip.NewWriter(buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if !e.dosZip {
			h.SetMode(e.fileMode())
		}
		body := e.body
		if e.typ == tar.TypeSymlink {
			body = e.link
		}
		if e.typ == tar.TypeDir || e.store {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarBytes(t testing.TB, entries []entry, gz bool) []byte {
	t.Helper()
	buf := bytes.NewBuffer(make([]byte, 0, 1024*len(entries)+10240))
	var tw *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(buf)
		tw = tar.NewWriter(zw)
	} else {
		tw = tar.NewWriter(buf)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if gz {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// writeArchive writes data to a file of its own folder, away from the destination.
func writeArchive(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// newDest makes an empty destination inside a folder of its own, so that a test can
// check nothing was written beside it.
func newDest(t testing.TB) (parent, dst string) {
	t.Helper()
	parent = t.TempDir()
	dst = filepath.Join(parent, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	return parent, dst
}

// zeroDeflate returns a raw deflate stream (no final block) that inflates to n MiB of
// zeros, built without compressing n MiB: one MiB is compressed once and its blocks
// repeated, which is valid because a fresh compressor's blocks refer to nothing
// before them.
func zeroDeflate(t testing.TB, mib int) []byte {
	t.Helper()
	var chunk bytes.Buffer
	fw, err := flate.NewWriter(&chunk, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); err != nil { // byte-aligned, not final
		t.Fatal(err)
	}
	return bytes.Repeat(chunk.Bytes(), mib)
}

// finalBlock is an empty final deflate block with fixed codes.
var finalBlock = []byte{0x03, 0x00}

func zerosCRC(mib int, prefix []byte) uint32 {
	c := crc32.ChecksumIEEE(prefix)
	z := make([]byte, 1<<20)
	for range mib {
		c = crc32.Update(c, crc32.IEEETable, z)
	}
	return c
}

// zipBomb is a zip with one entry of mib MiB of zeros, declaring declared bytes.
func zipBomb(t testing.TB, mib int, declared uint64) []byte {
	t.Helper()
	return zipZeros(t, 1, mib, declared)
}

// zipZeros is a zip of n entries of mib MiB of zeros each, each declaring declared
// bytes.
func zipZeros(t testing.TB, n, mib int, declared uint64) []byte {
	t.Helper()
	data := append(zeroDeflate(t, mib), finalBlock...)
	crc := zerosCRC(mib, nil)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range n {
		name := "zeros.bin"
		if n > 1 {
			name = fmt.Sprintf("zeros-%d.bin", i)
		}
		h := &zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc,
			CompressedSize64: uint64(len(data)), UncompressedSize64: declared}
		h.SetMode(0o644)
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarGzBomb is a tar.gz with one entry of mib MiB of zeros: after its header, a tar
// of zeros is all zeros, so the same repeated blocks make the gzip stream.
func tarGzBomb(t testing.TB, mib int) []byte {
	t.Helper()
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros.bin", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(mib) << 20}); err != nil {
		t.Fatal(err)
	}
	// Flush writes nothing for a header; the header is the first 512 bytes.
	head := hdr.Bytes()[:512]
	var body bytes.Buffer
	fw, _ := flate.NewWriter(&body, flate.BestCompression)
	fw.Write(head)
	fw.Flush()
	body.Write(zeroDeflate(t, mib+1)) // the content, then the end-of-archive blocks
	body.Write(finalBlock)

	var out bytes.Buffer
	out.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	out.Write(body.Bytes())
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], zerosCRC(mib+1, head))
	binary.LittleEndian.PutUint32(trailer[4:], uint32(512+(mib+1)<<20))
	out.Write(trailer[:])
	return out.Bytes()
}
