package inputs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wso2img/wso2img/internal/fstree"
	"github.com/wso2img/wso2img/internal/units"
)

// fetchLocal resolves a local file or directory, keeps it (and every symlink in it)
// inside the profile's folder, and copies it into the stage while it hashes it. Files
// are opened through an os.Root on the profile's folder, so that a path changed into a
// symlink after the checks still cannot reach outside it.
func (st *Stage) fetchLocal(ctx context.Context, s Spec) (*Verified, error) {
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
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fail("opening the profile folder", err)
	}
	defer r.Close()
	rel, err := filepath.Rel(root, resolved)
	if err != nil {
		return nil, fail("resolving it", err)
	}
	file, err := r.OpenFile(rel, readFlags, 0)
	if err != nil {
		return nil, fail("opening it", err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, fail("reading it", err)
	}
	switch {
	case fi.IsDir():
		if s.SHA256 != "" || s.SHA512 != "" || s.Signature != "" {
			return nil, fmt.Errorf("%s: a directory cannot have a checksum or a signature; declare its files one by one to check them", where(s.Profile, s.Field, s.Path))
		}
		return st.localDir(ctx, s, r, root, rel)
	case fi.Mode().IsRegular():
		return st.localFile(ctx, s, file, fi)
	default:
		return nil, verifyErr(s, whatLocalFile, "a regular file or directory", fstree.Kind(fi.Mode())+" at "+resolved)
	}
}

// localFile copies the open file into the stage while hashing it, checks it, and checks
// its signature against the copy.
func (st *Stage) localFile(ctx context.Context, s Spec, file *os.File, fi fs.FileInfo) (*Verified, error) {
	fail := func(doing string, err error) error {
		return fmt.Errorf("%s: %s: %w", where(s.Profile, s.Field, s.Path), doing, err)
	}
	want, err := parseSums(s)
	if err != nil {
		return nil, err
	}
	if err := oneName(s, s.Path, fi); err != nil {
		return nil, err
	}
	max := st.f.maxSizeOf(s)
	if fi.Size() > max {
		return nil, sizeErr(s, max, units.Bytes(fi.Size()))
	}
	tmp, err := st.newTemp()
	if err != nil {
		return nil, fail("staging", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // gone already once kept
	}()
	got, size, err := copyHashed(ctx, tmp, io.LimitReader(file, max+1), want.sha512 != "")
	if err != nil {
		return nil, fail("hashing", err)
	}
	if size > max {
		return nil, sizeErr(s, max, "more than "+units.Bytes(max)+" (it grew while it was read)")
	}
	if err := want.check(s, got); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, fail("staging", err)
	}
	local, err := st.keepFile(tmp.Name(), got.sha256)
	if err != nil {
		return nil, fail("staging", err)
	}
	v := &Verified{
		Spec:   s,
		Local:  local,
		Digest: "sha256:" + got.sha256,
		Size:   size,
		Files:  []File{{Rel: filepath.Base(s.Path), Type: "file", Mode: fileMode(fi.Mode()), Size: size, SHA256: got.sha256}},
	}
	msg := fmt.Sprintf("local %s (%s)", s.Path, units.Bytes(size))
	if !want.empty() {
		msg += ", " + want.verified()
	}
	if s.Signature != "" {
		if v.Signer, err = st.f.verifySignature(ctx, s, local); err != nil {
			return nil, err
		}
		msg += ", gpg signature by " + v.Signer + " verified"
	}
	st.f.logf("%s", msg)
	return v, nil
}

// localDir copies the directory at rel (below r, the profile's folder at host path
// root) into the stage entry by entry, hashing every file as it is copied, so that
// the listing and digest describe exactly the staged tree.
func (st *Stage) localDir(ctx context.Context, s Spec, r *os.Root, root, rel string) (*Verified, error) {
	tree, err := st.newTree()
	if err != nil {
		return nil, fmt.Errorf("%s: staging: %w", where(s.Profile, s.Field, s.Path), err)
	}
	kept := false
	defer func() {
		if !kept {
			removeAll(tree)
		}
	}()
	out, err := os.OpenRoot(tree)
	if err != nil {
		return nil, fmt.Errorf("%s: staging: %w", where(s.Profile, s.Field, s.Path), err)
	}
	defer out.Close()
	v := &Verified{Spec: s, Dir: true}
	top := filepath.ToSlash(rel)
	var dirs []File // made writable while they fill, given their modes at the end
	err = fs.WalkDir(r.FS(), top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == top {
			return nil
		}
		rel := strings.TrimPrefix(p, top+"/")
		if top == "." {
			rel = p
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := File{Rel: rel, Mode: fileMode(info.Mode())}
		switch m := info.Mode(); {
		case m.IsDir():
			e.Type = "dir"
			if err := out.Mkdir(rel, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, e)
		case m.IsRegular():
			if err := st.copyEntry(ctx, s, r, p, out, &e); err != nil {
				return fmt.Errorf("copying %s: %w", rel, err)
			}
			v.Size += e.Size
		case m&fs.ModeSymlink != 0:
			if e.Target, err = r.Readlink(p); err != nil {
				return err
			}
			if err := symlinkInside(s, root, filepath.Join(root, filepath.FromSlash(p)), rel, e.Target); err != nil {
				return err
			}
			e.Type = "symlink"
			if err := out.Symlink(e.Target, rel); err != nil {
				return err
			}
		default:
			return verifyErr(s, whatLocalFile, "only regular files, directories and symlinks", fstree.Kind(m)+" at "+rel)
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
	// Deepest first, so that a read-only directory is closed only once it is full.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := out.Chmod(dirs[i].Rel, dirs[i].Mode.Perm()); err != nil {
			return nil, fmt.Errorf("%s: staging: %w", where(s.Profile, s.Field, s.Path), err)
		}
	}
	v.Digest = fstree.Digest(v.Files)
	if v.Local, err = st.keepTree(tree, v.Digest); err != nil {
		return nil, fmt.Errorf("%s: staging: %w", where(s.Profile, s.Field, s.Path), err)
	}
	kept = true
	st.f.logf("local %s (%d entries, %s)", s.Path, len(v.Files), units.Bytes(v.Size))
	return v, nil
}

// copyEntry copies the regular file at p (below r) to e.Rel below out while hashing
// it, and fills e from what was read: the file as opened, not as listed.
func (st *Stage) copyEntry(ctx context.Context, s Spec, r *os.Root, p string, out *os.Root, e *File) error {
	in, err := r.OpenFile(p, readFlags, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("it changed into %s while it was read", fstree.Kind(fi.Mode()))
	}
	if err := oneName(s, e.Rel, fi); err != nil {
		return err
	}
	w, err := out.OpenFile(e.Rel, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	got, size, err := copyHashed(ctx, w, in, false)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	e.Type, e.Mode, e.Size, e.SHA256 = "file", fileMode(fi.Mode()), size, got.sha256
	// The staged copy keeps the permission bits; setuid, setgid and sticky stay in the
	// listing (and the digest) only: the layer clears them anyway.
	return out.Chmod(e.Rel, fi.Mode().Perm())
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

// within says whether p is root or below it; both must be clean.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// oneName refuses a local file that has other names (hard links): a hard link to a file
// outside the profile folder — /etc/shadow, say — reads as an ordinary file inside it,
// and no path check can tell.
func oneName(s Spec, name string, fi fs.FileInfo) error {
	if n := links(fi); n > 1 {
		return verifyErr(s, whatLocalFile, "files with one name each (copy hard-linked files into the profile folder)",
			fmt.Sprintf("%s, a hard link with %d names: its other names may be outside the profile folder", name, n))
	}
	return nil
}
