package inputs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/wso2img/wso2img/internal/units"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// fetchLocal resolves a local file or directory, keeps it (and every symlink in it)
// inside the profile's folder, and hashes it.
func (f *Fetcher) fetchLocal(ctx context.Context, s Spec) (*Verified, error) {
	fail := func(doing string, err error) error {
		return fmt.Errorf("%s: %s: %w", where(s.Profile, s.Field, s.Path), doing, err)
	}
	if !filepath.IsAbs(s.Path) || !filepath.IsAbs(s.Root) {
		return nil, fmt.Errorf("%s: the path and the profile folder (%q) must be absolute", where(s.Profile, s.Field, s.Path), s.Root)
	}
	root, err := filepath.EvalSymlinks(s.Root)
	if err != nil {
		return nil, fail("resolving the profile folder", err)
	}
	if p := filepath.Clean(s.Path); !within(filepath.Clean(s.Root), p) && !within(root, p) {
		return nil, verifyErr(s, whatLocalFile, "a path inside the profile folder "+s.Root, s.Path)
	}
	if _, err := os.Lstat(s.Path); errors.Is(err, fs.ErrNotExist) {
		return nil, verifyErr(s, whatLocalFile, "a file or directory", "nothing at "+s.Path)
	}
	resolved, err := filepath.EvalSymlinks(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		target, _ := os.Readlink(s.Path)
		return nil, verifyErr(s, whatLocalFile, "a file or directory", fmt.Sprintf("a symlink to %s, which does not exist", target))
	}
	if err != nil {
		return nil, fail("resolving symlinks", err)
	}
	if !within(root, resolved) {
		return nil, verifyErr(s, whatSymlink, "a target inside the profile folder "+root, "a symlink that resolves to "+resolved)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, fail("reading it", err)
	}
	switch {
	case fi.IsDir():
		if s.SHA256 != "" || s.SHA512 != "" || s.Signature != "" {
			return nil, fmt.Errorf("%s: a directory cannot have a checksum or a signature; declare its files one by one to check them", where(s.Profile, s.Field, s.Path))
		}
		return f.localDir(ctx, s, root, resolved)
	case fi.Mode().IsRegular():
		return f.localFile(ctx, s, resolved, fi)
	default:
		return nil, verifyErr(s, whatLocalFile, "a regular file or directory", kind(fi.Mode())+" at "+resolved)
	}
}

func (f *Fetcher) localFile(ctx context.Context, s Spec, file string, fi fs.FileInfo) (*Verified, error) {
	want, err := parseSums(s)
	if err != nil {
		return nil, err
	}
	got, size, err := hashFile(ctx, file, want.sha512 != "")
	if err != nil {
		return nil, fmt.Errorf("%s: hashing: %w", where(s.Profile, s.Field, s.Path), err)
	}
	if err := want.check(s, got); err != nil {
		return nil, err
	}
	v := &Verified{
		Spec:   s,
		Local:  file,
		Digest: "sha256:" + got.sha256,
		Size:   size,
		Files:  []File{{Rel: filepath.Base(s.Path), Type: "file", Mode: fileMode(fi.Mode()), Size: size, SHA256: got.sha256}},
	}
	msg := fmt.Sprintf("local %s (%s)", s.Path, units.Bytes(size))
	if !want.empty() {
		msg += ", " + want.verified()
	}
	if s.Signature != "" {
		if v.Signer, err = f.verifySignature(ctx, s, file); err != nil {
			return nil, err
		}
		msg += ", gpg signature by " + v.Signer + " verified"
	}
	f.logf("%s", msg)
	return v, nil
}

func (f *Fetcher) localDir(ctx context.Context, s Spec, root, dir string) (*Verified, error) {
	v := &Verified{Spec: s, Local: dir, Dir: true}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		r, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(r)
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := File{Rel: rel, Mode: fileMode(info.Mode())}
		switch m := info.Mode(); {
		case m.IsDir():
			e.Type = "dir"
		case m.IsRegular():
			got, size, err := hashFile(ctx, p, false)
			if err != nil {
				return fmt.Errorf("hashing %s: %w", rel, err)
			}
			e.Type, e.Size, e.SHA256 = "file", size, got.sha256
			v.Size += size
		case m&fs.ModeSymlink != 0:
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
			if err := symlinkInside(s, root, p, rel, e.Target); err != nil {
				return err
			}
			e.Type = "symlink"
		default:
			return verifyErr(s, whatLocalFile, "only regular files, directories and symlinks", kind(m)+" at "+rel)
		}
		v.Files = append(v.Files, e)
		return nil
	})
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return nil, ve
		}
		return nil, fmt.Errorf("%s: reading the directory: %w", where(s.Profile, s.Field, s.Path), err)
	}
	v.Digest = treeDigest(v.Files)
	f.logf("local %s (%d entries, %s)", s.Path, len(v.Files), units.Bytes(v.Size))
	return v, nil
}

// symlinkInside refuses a symlink at p (rel in the input) whose target resolves
// outside root. A dangling link is judged by its target's path: nothing can be read
// through it.
func symlinkInside(s Spec, root, p, rel, target string) error {
	abs := target
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(filepath.Dir(p), target)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, fs.ErrNotExist) {
		resolved, err = filepath.Clean(abs), nil
	}
	if err != nil {
		return fmt.Errorf("resolving the symlink %s: %w", rel, err)
	}
	if !within(root, resolved) {
		return verifyErr(s, whatSymlink, "a target inside the profile folder "+root,
			fmt.Sprintf("%s -> %s, which resolves to %s", rel, target, resolved))
	}
	return nil
}

// treeDigest is the digest of a directory input: the sha256 of a listing with one
// line per entry, sorted by Rel (byte order), each ending in "\n":
//
//	file <mode> <size> <sha256> <rel>
//	dir <mode> <rel>
//	symlink <target> <rel>
//
// <mode> is the unix permission bits in octal, with setuid/setgid/sticky (e.g. 0644,
// 4755); <rel> and <target> are Go-quoted (strconv.Quote) so that spaces or newlines
// in names cannot make two trees list the same. Timestamps and owners are left out:
// the build clamps and sets them.
func treeDigest(files []File) string {
	sort.Slice(files, func(i, j int) bool { return files[i].Rel < files[j].Rel })
	h := sha256.New()
	for _, e := range files {
		var line string
		switch e.Type {
		case "file":
			line = fmt.Sprintf("file %s %d %s %s\n", octal(e.Mode), e.Size, e.SHA256, strconv.Quote(e.Rel))
		case "dir":
			line = fmt.Sprintf("dir %s %s\n", octal(e.Mode), strconv.Quote(e.Rel))
		case "symlink":
			line = fmt.Sprintf("symlink %s %s\n", strconv.Quote(e.Target), strconv.Quote(e.Rel))
		}
		h.Write([]byte(line))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// octal writes m as unix mode bits: fs.FileMode keeps setuid, setgid and sticky
// outside the low 12 bits.
func octal(m fs.FileMode) string {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return fmt.Sprintf("%04o", bits)
}

// within says whether p is root or below it; both must be clean.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (fifo)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file (" + m.Type().String() + ")"
}
