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
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// stagedTime is the modification time of every staged file and symlink. Staged names
// are content addresses (files/<sha256>, trees/<tree digest>/…), so one name always
// holds the same bytes: a pinned time lets BuildKit's file transfer, which compares
// names, sizes and times, skip what the daemon already holds from an earlier build
// instead of sending every input again. The image never sees it: the layer sets the
// update's time on everything it adds.
var stagedTime = time.Unix(946684800, 0) // 2000-01-01T00:00:00Z

// staleAfter is how old a staging directory without a live owner may get before a
// later run removes it (one whose lock cannot be checked, or half made).
const staleAfter = time.Hour

// Stage is a private directory that holds the verified copies of a plan's inputs: the
// bytes are copied while they are hashed, so what was verified is exactly what the
// build reads, whatever happens to the profile's folder or the download cache
// afterwards. It is created mode 0700 under the cache directory (staging/<random>),
// and removed by Close. A directory left by a process that died is removed by the next
// NewStage: each stage holds a lock while it lives.
//
// Layout: files/<sha256> are verified files (one per content), trees/<hex of the tree
// digest>/ verified directories and extracted archives, tmp/ work in progress.
type Stage struct {
	f    *Fetcher
	dir  string
	lock *os.File

	mu     sync.Mutex
	closed bool
}

// NewStage makes an empty private staging directory, first removing those that earlier
// runs left behind.
func (f *Fetcher) NewStage() (*Stage, error) {
	parent := filepath.Join(f.cacheDir, "staging")
	if err := privateDir(parent); err != nil {
		return nil, fmt.Errorf("preparing the staging directory: %w", err)
	}
	f.sweep(parent)
	tmp, err := os.MkdirTemp(parent, ".new-") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("making a staging directory: %w", err)
	}
	lock, err := lockStage(tmp)
	if err == nil {
		for _, sub := range []string{"files", "trees", "tmp"} {
			if err = os.Mkdir(filepath.Join(tmp, sub), 0o700); err != nil {
				break
			}
		}
	}
	dir := filepath.Join(parent, strings.TrimPrefix(filepath.Base(tmp), ".new-"))
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("making a staging directory: %w", err)
	}
	return &Stage{f: f, dir: dir, lock: lock}, nil
}

// privateDir makes dir (mode 0700) or checks that the one there is a directory of the
// running user, and makes it 0700: nobody else may put or swap anything in it.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if uid, ok := owner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%s belongs to user %d, not to the running user %d", dir, uid, os.Getuid())
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// Dir is the staging directory.
func (st *Stage) Dir() string { return st.dir }

// Close removes the staging directory and everything in it. It is safe to call more
// than once; the build must be over.
func (st *Stage) Close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return nil
	}
	st.closed = true
	err := removeAll(st.dir)
	if st.lock != nil {
		st.lock.Close()
	}
	if err != nil {
		return fmt.Errorf("removing the staging directory %s: %w", st.dir, err)
	}
	return nil
}

// Fetch fetches (or resolves) one input, verifies it and keeps the verified copy in the
// stage: Verified.Local names it. A failed check is a *VerifyError; other failures
// (network, I/O, a malformed Spec) are plain errors. Every error names the profile, the
// field and the source.
func (st *Stage) Fetch(ctx context.Context, s Spec) (*Verified, error) {
	switch {
	case s.URL != "" && s.Path != "":
		return nil, fmt.Errorf("profile %q, %s: both a URL (%s) and a path (%s) are set; an input has one of them", s.Profile, s.Field, redact(s.URL), s.Path)
	case s.URL == "" && s.Path == "":
		return nil, fmt.Errorf("profile %q, %s: neither a URL nor a path is set", s.Profile, s.Field)
	}
	if err := checkCredentials(s); err != nil {
		return nil, err
	}
	if s.Signature != "" && s.Keyring == nil {
		return nil, fmt.Errorf("%s: a signature (%s) needs a keyring with pinned fingerprints, and none is set", where(s.Profile, s.Field, s.source()), s.Signature)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", where(s.Profile, s.Field, s.source()), err)
	}
	var v *Verified
	var err error
	if s.URL != "" {
		v, err = st.fetchURL(ctx, s)
	} else {
		v, err = st.fetchLocal(ctx, s)
	}
	if err != nil || !s.Extract {
		return v, err
	}
	if v.Dir {
		return nil, fmt.Errorf("%s: extract applies to an archive file, and this is a directory", where(s.Profile, s.Field, s.source()))
	}
	return st.extract(ctx, s, v)
}

// FetchAll fetches and verifies every spec into the stage, a few at a time, and
// reports all failures at once (joined, in spec order) so that a user can fix every bad
// input in one go. The results are in spec order; on any failure there are none.
func (st *Stage) FetchAll(ctx context.Context, specs []Spec) ([]*Verified, error) {
	out := make([]*Verified, len(specs))
	errs := make([]error, len(specs))
	var g errgroup.Group
	g.SetLimit(st.f.concurrency)
	for i, s := range specs {
		g.Go(func() error {
			out[i], errs[i] = st.Fetch(ctx, s)
			return nil // keep going: every failure is reported
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// newTemp makes an empty file (mode 0600) for bytes being verified.
func (st *Stage) newTemp() (*os.File, error) {
	return os.CreateTemp(filepath.Join(st.dir, "tmp"), "file-")
}

// keepFile moves a verified temporary file to files/<sha256>, the name of its content,
// and returns its path. Two inputs with the same content share it.
func (st *Stage) keepFile(tmp, sha256hex string) (string, error) {
	if err := os.Chtimes(tmp, stagedTime, stagedTime); err != nil {
		return "", err
	}
	final := filepath.Join(st.dir, "files", sha256hex)
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	return final, nil
}

// newTree makes an empty directory (mode 0700) for a tree being verified.
func (st *Stage) newTree() (string, error) {
	return os.MkdirTemp(filepath.Join(st.dir, "tmp"), "tree-")
}

// keepTree moves a verified temporary tree to trees/<hex of its digest> and returns its
// path; when another input made the same tree already, that one is kept.
func (st *Stage) keepTree(tmp, digest string) (string, error) {
	if err := pinTimes(tmp); err != nil {
		return "", err
	}
	final := filepath.Join(st.dir, "trees", strings.TrimPrefix(digest, "sha256:"))
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Lstat(final); serr == nil {
			return final, removeAll(tmp)
		}
		return "", err
	}
	return final, nil
}

// copyHashed copies r into w while hashing it, and stops when ctx is done. It returns
// what the hasher saw.
func copyHashed(ctx context.Context, w io.Writer, r io.Reader, with512 bool) (sums, int64, error) {
	h := newHasher(with512)
	_, err := io.CopyBuffer(io.MultiWriter(w, h), ctxReader{ctx, r}, make([]byte, copyBuffer))
	return h.sums(), h.seen(), err
}

// pinTimes sets stagedTime on every entry of the tree at dir, symlinks included (not
// their targets).
func pinTimes(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return lchtimes(p, stagedTime)
	})
}

// removeAll removes dir like os.RemoveAll, first making every directory in it writable:
// a staged tree keeps the modes its source had, read-only directories included.
func removeAll(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// sweep removes the staging directories under parent that no live process owns: their
// lock can be taken (the process that held it is gone), or they are half made and old.
func (f *Fetcher) sweep(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		fi, err := e.Info()
		if err != nil {
			continue
		}
		old := time.Since(fi.ModTime()) > staleAfter
		if strings.HasPrefix(e.Name(), ".new-") {
			if old {
				_ = removeAll(dir)
			}
			continue
		}
		if abandoned(dir, old) {
			if err := removeAll(dir); err == nil {
				f.logf("removed staging directory %s, which an earlier run left behind", dir)
			}
		}
	}
}
