package archive

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/wso2img/wso2img/internal/fstree"
)

// tar extracts a tar or tar.gz as a stream. The bytes read from the file (compressed
// or not) are counted as the decompressor consumes them, so a ratio is measured the
// same way for gzip data and for a plain tar's sparse entries.
func (x *extractor) tar(f *os.File, gz bool) error {
	cr := newCountingReader(f)
	x.totalIn = func() int64 { return cr.n }
	var r io.Reader = cr
	if gz {
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return x.corrupt("", err)
		}
		r = zr
	}
	tr := tar.NewReader(r)
	last := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) { // names are judged below
			if last != "" {
				err = fmt.Errorf("after entry %q: %w", last, err)
			}
			return x.corrupt("", err)
		}
		if err := x.count(hdr.Name); err != nil {
			return err
		}
		if err := x.tarEntry(tr, hdr, cr); err != nil {
			return err
		}
		last = hdr.Name
	}
}

func (x *extractor) tarEntry(tr *tar.Reader, hdr *tar.Header, cr *countingReader) error {
	name := hdr.Name
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // metadata for the entries that follow, none of which wso2img keeps
	}
	rel, err := x.cleanName(name, name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name, rel)
	case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse:
		start := cr.n
		_, err := x.file(name, rel, hdr.FileInfo().Mode().Perm(), tr, func() int64 { return cr.n - start })
		return err
	case tar.TypeSymlink:
		return x.symlink(name, rel, hdr.Linkname)
	case tar.TypeLink:
		return x.hardlink(name, rel, hdr.Linkname)
	case tar.TypeChar:
		return x.refuse(name, WhatSpecial, "regular files, directories and symlinks", fstree.Kind(fs.ModeDevice|fs.ModeCharDevice))
	case tar.TypeBlock:
		return x.refuse(name, WhatSpecial, "regular files, directories and symlinks", fstree.Kind(fs.ModeDevice))
	case tar.TypeFifo:
		return x.refuse(name, WhatSpecial, "regular files, directories and symlinks", fstree.Kind(fs.ModeNamedPipe))
	}
	return x.refuse(name, WhatUnsupported, "a file, directory, symlink or hard link", fmt.Sprintf("tar entry type %q", hdr.Typeflag))
}
