// Package archive extracts a verified zip, tar or tar.gz input (a Carbon app bundle,
// a patch or connector pack) into an empty staging directory, refusing anything that
// could reach outside it or exhaust the build host: entries that leave the
// destination, symlinks that resolve outside it, hard links to anything but an
// earlier regular file, devices, fifos and sockets, paths claimed twice, too many
// entries, too many bytes and compression ratios of a zip bomb. Sizes and ratios are
// measured while reading; sizes declared in the archive are never trusted. Every file
// operation goes through an os.Root on the destination, so even a mistake in these
// checks cannot write outside it.
//
// It owns extraction only: it must not fetch or verify the archive (build/inputs does,
// before), and must not know about profiles, BuildKit or registries. It prints nothing.
//
// Modes follow wso2img's directory inputs: a regular file keeps its permission bits
// (0644 when a zip entry carries no unix mode, as Java's jar tool writes them),
// setuid, setgid and sticky are cleared, and every directory is 0755. Owners and
// timestamps are not taken from the archive: the build sets the product user and the
// update's time on every file it adds, so callers must not rely on the timestamps
// found here (Options.ModTime can pin them).
package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/wso2img/wso2img/internal/fstree"
)

// Format is an archive format.
type Format string

// The formats Extract reads.
const (
	Zip   Format = "zip"
	Tar   Format = "tar"
	TarGz Format = "tar.gz"
)

// Defaults for the limits in Options.
const (
	DefaultMaxEntries = 10_000
	DefaultMaxSize    = 2 << 30 // 2 GiB
	DefaultMaxRatio   = 200
	DefaultRatioAfter = 8 << 20 // 8 MiB
)

// Options configure Extract. The zero value is usable.
type Options struct {
	// Name names the archive in errors (the input's URL, say); default its path.
	Name string
	// Format overrides detection from the first bytes (for a self-extracting zip, say).
	Format Format
	// MaxEntries bounds the number of entries; default DefaultMaxEntries.
	MaxEntries int
	// MaxSize bounds the bytes written, all files together; default DefaultMaxSize.
	MaxSize int64
	// MaxRatio bounds bytes written per byte read from the archive, for each entry
	// and for the archive as a whole; default DefaultMaxRatio.
	MaxRatio int64
	// RatioAfter is how many bytes an entry (or the whole archive) may write before
	// MaxRatio applies: small, very compressible files are normal. Default
	// DefaultRatioAfter.
	RatioAfter int64
	// ModTime, when set, is the modification time of every extracted file and
	// directory (symlinks keep the time of their creation). Zero leaves the times of
	// the extraction.
	ModTime time.Time
}

// Result is what Extract wrote.
type Result struct {
	// Format is the format read.
	Format Format
	// Files lists every entry below the destination, sorted by Rel, including the
	// directories that entries imply. A hard link is listed as the file it is.
	Files []File
	// Digest is "sha256:<hex>" of the tree's canonical listing, in the format of
	// build/inputs' directory inputs (see fstree.Digest).
	Digest string
	// Size is the sum of the sizes of the regular files.
	Size int64
}

// File is one entry of the extracted tree, shaped like inputs.File.
type File = fstree.Entry

// Extract extracts the archive at src into dst, an existing empty directory. A
// refused archive is an *Error and leaves dst empty again; other failures (reading
// src, writing dst) are plain errors, after which dst is emptied as far as possible.
func Extract(ctx context.Context, src, dst string, opts Options) (*Result, error) {
	opts = opts.withDefaults(src)
	if err := emptyDir(dst); err != nil {
		return nil, fmt.Errorf("extracting %s: %w", opts.Name, err)
	}
	// Stat before opening: opening a fifo would block.
	if fi, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("extracting %s: %w", opts.Name, err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("extracting %s: %s is not a regular file", opts.Name, src)
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("extracting %s: %w", opts.Name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("extracting %s: %w", opts.Name, err)
	}
	format := opts.Format
	switch format {
	case Zip, Tar, TarGz:
	case "":
		if format, err = detect(f, opts.Name); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("extracting %s: unknown format %q (zip, tar or tar.gz)", opts.Name, opts.Format)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return nil, fmt.Errorf("extracting %s: %w", opts.Name, err)
	}
	defer root.Close()

	x := newExtractor(ctx, root, opts)
	switch format {
	case Zip:
		err = x.zip(f, fi.Size())
	default:
		err = x.tar(f, format == TarGz)
	}
	if err == nil {
		err = x.finish()
	}
	if err != nil {
		x.clean()
		var ae *Error
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, fmt.Errorf("extracting %s into %s: %w", opts.Name, dst, err)
	}
	res := x.result()
	res.Format = format
	return res, nil
}

func (o Options) withDefaults(src string) Options {
	if o.Name == "" {
		o.Name = src
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxRatio <= 0 {
		o.MaxRatio = DefaultMaxRatio
	}
	if o.RatioAfter <= 0 {
		o.RatioAfter = DefaultRatioAfter
	}
	return o
}

// emptyDir checks that dst is an existing, empty directory: extracting over files
// would mix them with the archive's and defeat the duplicate checks.
func emptyDir(dst string) error {
	fi, err := os.Lstat(dst)
	if err != nil {
		return fmt.Errorf("the destination must be an existing empty directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("the destination %s must be an empty directory, found %s", dst, fi.Mode().Type())
	}
	d, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if len(names) > 0 {
		return fmt.Errorf("the destination %s must be an empty directory, found %q in it", dst, names[0])
	}
	if err != nil && err != io.EOF {
		return err
	}
	return nil
}

// detect tells the format from the first bytes: zip's local header (or the end record
// of an empty zip), gzip's magic followed by a tar header once decompressed, or the
// ustar magic of a tar header.
func detect(f *os.File, name string) (Format, error) {
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("extracting %s: reading its first bytes: %w", name, err)
	}
	head = head[:n]
	refuse := func(found string) error {
		return &Error{Archive: name, What: WhatFormat, Expected: "zip, tar or tar.gz", Found: found}
	}
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return Zip, nil
	case isTar(head):
		return Tar, nil
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bufio.NewReader(io.NewSectionReader(f, 0, 1<<62)))
		if err != nil {
			return "", refuse("gzip data with a broken header (" + err.Error() + ")")
		}
		inner := make([]byte, 512)
		m, _ := io.ReadFull(zr, inner)
		if !isTar(inner[:m]) {
			return "", refuse("gzip-compressed data that is not a tar archive")
		}
		return TarGz, nil
	}
	return "", refuse(describe(head))
}

// isTar says whether b starts with a POSIX (ustar\0) or GNU (ustar ) tar header.
func isTar(b []byte) bool {
	return len(b) >= 262 && string(b[257:262]) == "ustar"
}

// describe names what the first bytes look like, for the message of a refusal.
func describe(b []byte) string {
	known := []struct{ magic, name string }{
		{"BZh", "bzip2 data"},
		{"\xfd7zXZ\x00", "xz data"},
		{"\x28\xb5\x2f\xfd", "zstd data"},
		{"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"},
		{"Rar!", "a RAR archive"},
		{"%PDF", "a PDF document"},
		{"<", "text that looks like HTML or XML"},
		{"\x7fELF", "an ELF executable"},
	}
	for _, k := range known {
		if bytes.HasPrefix(b, []byte(k.magic)) {
			return k.name
		}
	}
	if len(b) == 0 {
		return "an empty file"
	}
	if len(b) > 8 {
		b = b[:8]
	}
	return fmt.Sprintf("data starting with % x", b)
}

func quote(s string) string { return strconv.Quote(s) }
