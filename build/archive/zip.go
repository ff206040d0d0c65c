package archive

import (
	"archive/zip"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/wso2img/wso2img/internal/fstree"
)

// zip extracts a zip. Each entry's compressed bytes are read raw and decompressed
// here, so that the bytes an entry consumed are counted, not taken from its header;
// the ratio of the whole archive is against its size on disk, since entries can
// share (overlap) their compressed data.
func (x *extractor) zip(f *os.File, size int64) error {
	x.totalIn = func() int64 { return size }
	zr, err := zip.NewReader(f, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are judged below
		return x.corrupt("", err)
	}
	if n := len(zr.File); n > x.opts.MaxEntries {
		return x.refuse("", WhatEntries, fmt.Sprintf("at most %d entries", x.opts.MaxEntries), fmt.Sprintf("%d entries", n))
	}
	for _, zf := range zr.File {
		if err := x.count(zf.Name); err != nil {
			return err
		}
		if err := x.zipEntry(zf); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) zipEntry(zf *zip.File) error {
	name := zf.Name
	rel, err := x.cleanName(name, name)
	if err != nil {
		return err
	}
	mode := zf.Mode()
	if strings.HasSuffix(strings.ReplaceAll(name, `\`, "/"), "/") || mode.IsDir() {
		return x.dir(name, rel)
	}
	if zf.Flags&0x1 != 0 {
		return x.refuse(name, WhatUnsupported, "an unencrypted entry", "an encrypted one")
	}
	switch {
	case mode&fs.ModeSymlink != 0:
		r, _, err := x.zipOpen(zf)
		if err != nil {
			return err
		}
		target, err := io.ReadAll(io.LimitReader(r, maxTarget+1))
		if err != nil {
			return x.corrupt(name, err)
		}
		if len(target) <= maxTarget && crc32.ChecksumIEEE(target) != zf.CRC32 {
			return x.corrupt(name, fmt.Errorf("crc32 %08x, the central directory says %08x", crc32.ChecksumIEEE(target), zf.CRC32))
		}
		return x.symlink(name, rel, string(target))
	case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
		return x.refuse(name, WhatSpecial, "regular files, directories and symlinks", fstree.Kind(mode))
	}
	perm := fs.FileMode(0o644)
	if unixMode(zf) {
		perm = mode.Perm()
	}
	r, in, err := x.zipOpen(zf)
	if err != nil {
		return err
	}
	crc, err := x.file(name, rel, perm, r, in)
	if err != nil {
		return err
	}
	if got := x.nodes[rel].size; uint64(got) != zf.UncompressedSize64 {
		return x.corrupt(name, fmt.Errorf("%d bytes, the central directory says %d", got, zf.UncompressedSize64))
	}
	if crc != zf.CRC32 {
		return x.corrupt(name, fmt.Errorf("crc32 %08x, the central directory says %08x", crc, zf.CRC32))
	}
	return nil
}

// zipOpen returns the entry's decompressed bytes and a count of the compressed bytes
// consumed so far.
func (x *extractor) zipOpen(zf *zip.File) (io.Reader, func() int64, error) {
	raw, err := zf.OpenRaw()
	if err != nil {
		return nil, nil, x.corrupt(zf.Name, err)
	}
	cr := newCountingReader(raw)
	in := func() int64 { return cr.n }
	switch zf.Method {
	case zip.Store:
		return cr, in, nil
	case zip.Deflate:
		return flate.NewReader(cr), in, nil
	}
	return nil, nil, x.refuse(zf.Name, WhatUnsupported, "store or deflate compression", fmt.Sprintf("compression method %d", zf.Method))
}

// unixMode says whether a zip entry carries unix permission bits: zips written on
// unix do; Java's jar tool and Windows tools write none, and archive/zip then reports
// 0666, which the image must not get.
func unixMode(zf *zip.File) bool {
	creator := zf.CreatorVersion >> 8
	return (creator == 3 || creator == 19) && zf.ExternalAttrs>>16 != 0 // unix, macOS
}
