package inputs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/wso2img/wso2img/internal/units"
)

// fetchURL downloads a remote input into the cache (or re-verifies the cached copy),
// copying the bytes into the stage as it hashes them, and checks its checksums and
// signature against that copy.
func (st *Stage) fetchURL(ctx context.Context, s Spec) (*Verified, error) {
	f := st.f
	u, err := parseHTTPS(s, s.URL)
	if err != nil {
		return nil, err
	}
	want, err := parseSums(s)
	if err != nil {
		return nil, err
	}
	if want.empty() {
		return nil, verifyErr(s, whatChecksum, "a sha256 or sha512 (one is required for every URL)", "neither")
	}
	// The cache is addressed by the strongest-known name the profile gives: sha256
	// when it has one, sha512 otherwise.
	blob := filepath.Join(f.blobs, "sha256", want.sha256)
	if want.sha256 == "" {
		blob = filepath.Join(f.blobs, "sha512", want.sha512)
	}
	unlock, err := f.lock(ctx, blob)
	if err != nil {
		return nil, fmt.Errorf("%s: waiting for the cache: %w", where(s.Profile, s.Field, s.source()), err)
	}
	defer unlock()

	tmp, err := st.newTemp()
	if err != nil {
		return nil, fmt.Errorf("%s: staging: %w", where(s.Profile, s.Field, s.source()), err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // gone already once kept
	}()
	got, size, hit, err := st.cached(ctx, s, blob, want, tmp)
	if err != nil {
		return nil, err
	}
	verb := "cached"
	if !hit {
		verb = "fetched"
		if got, size, err = st.download(ctx, s, u, blob, want, tmp); err != nil {
			return nil, err
		}
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("%s: staging: %w", where(s.Profile, s.Field, s.source()), err)
	}
	local, err := st.keepFile(tmp.Name(), got.sha256)
	if err != nil {
		return nil, fmt.Errorf("%s: staging: %w", where(s.Profile, s.Field, s.source()), err)
	}
	rel := path.Base(u.Path)
	if rel == "/" || rel == "." {
		rel = "download" // a URL without a file name; the profile's dest names it
	}
	v := &Verified{
		Spec:   s,
		Local:  local,
		Digest: "sha256:" + got.sha256,
		Size:   size,
		Files:  []File{{Rel: rel, Type: "file", Mode: 0o644, Size: size, SHA256: got.sha256}},
	}
	msg := fmt.Sprintf("%s %s (%s), %s", verb, s.source(), units.Bytes(size), want.verified())
	if s.Signature != "" {
		if v.Signer, err = st.f.verifySignature(ctx, s, local); err != nil {
			return nil, err
		}
		msg += ", gpg signature by " + v.Signer + " verified"
	}
	f.logf("%s", msg)
	return v, nil
}

// cached re-verifies a cached blob while copying it into stage (a file of the stage).
// A blob that no longer matches (tampered with or corrupted) is logged and deleted, and
// reported as a miss so it is fetched again.
func (st *Stage) cached(ctx context.Context, s Spec, blob string, want sums, stage *os.File) (sums, int64, bool, error) {
	f := st.f
	fail := func(doing string, err error) (sums, int64, bool, error) {
		return sums{}, 0, false, fmt.Errorf("%s: %s: %w", where(s.Profile, s.Field, s.source()), doing, err)
	}
	fi, err := os.Lstat(blob)
	if errors.Is(err, fs.ErrNotExist) {
		return sums{}, 0, false, nil
	}
	if err != nil {
		return fail("reading the cache", err)
	}
	var bad string
	var got sums
	var size int64
	switch max := f.maxSizeOf(s); {
	case !fi.Mode().IsRegular():
		bad = "is not a regular file"
	case fi.Size() > max:
		return sums{}, 0, false, sizeErr(s, max, fmt.Sprintf("%s (the cached copy)", units.Bytes(fi.Size())))
	default:
		file, err := os.Open(blob)
		if err != nil {
			return fail("reading the cache", err)
		}
		got, size, err = copyHashed(ctx, stage, io.LimitReader(file, max+1), want.sha512 != "")
		file.Close()
		if err != nil {
			return fail("re-verifying the cached copy "+blob, err)
		}
		if err := want.check(s, got); err != nil {
			var ve *VerifyError
			errors.As(err, &ve)
			bad = fmt.Sprintf("no longer matches its %s (found %s)", ve.What, ve.Found)
		}
	}
	if bad == "" {
		return got, size, true, nil
	}
	f.logf("cached copy %s of %s %s: deleting it and fetching again", blob, s.source(), bad)
	if err := os.Remove(blob); err != nil {
		return fail("deleting the bad cached copy", err)
	}
	if err := restart(stage); err != nil {
		return fail("staging", err)
	}
	return sums{}, 0, false, nil
}

// restart empties a staging file for another try.
func restart(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// download streams the URL into a temporary file next to blob and into stage, hashing
// as it goes, and renames the cache's copy into place only once the checksums match.
// The body is bounded by the input's size cap and checked against its Content-Length.
func (st *Stage) download(ctx context.Context, s Spec, u *url.URL, blob string, want sums, stage *os.File) (_ sums, _ int64, err error) {
	f := st.f
	fail := func(doing string, err error) error {
		return fmt.Errorf("%s: %s: %w", where(s.Profile, s.Field, s.source()), doing, err)
	}
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return sums{}, 0, fail("making the cache directory", err)
	}
	resp, err := f.client.get(ctx, s, u)
	if err != nil {
		return sums{}, 0, err
	}
	defer resp.Body.Close()
	max := f.maxSizeOf(s)
	if resp.ContentLength > max {
		return sums{}, 0, sizeErr(s, max, fmt.Sprintf("a Content-Length of %s", units.Bytes(resp.ContentLength)))
	}

	tmp, err := os.CreateTemp(filepath.Dir(blob), ".download-*")
	if err != nil {
		return sums{}, 0, fail("making a temporary file in the cache", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := newHasher(want.sha512 != "")
	stop := f.progress(s.source(), h, resp.ContentLength)
	_, err = io.CopyBuffer(io.MultiWriter(tmp, stage, h), io.LimitReader(resp.Body, max+1), make([]byte, copyBuffer))
	stop()
	n := h.seen()
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) && resp.ContentLength >= 0:
		return sums{}, 0, fail("downloading", fmt.Errorf("the connection closed after %s of the %s its Content-Length declares", units.Bytes(n), units.Bytes(resp.ContentLength)))
	case err != nil:
		return sums{}, 0, fail("downloading", err)
	case n > max:
		err = sizeErr(s, max, "more than "+units.Bytes(max))
		return sums{}, 0, err
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		// Go's client stops at Content-Length, so only a short body gets here.
		err = fail("downloading", fmt.Errorf("the body has %d bytes, and its Content-Length declares %d", n, resp.ContentLength))
		return sums{}, 0, err
	}
	if err := tmp.Close(); err != nil {
		return sums{}, 0, fail("writing the download", err)
	}
	got := h.sums()
	if err := want.check(s, got); err != nil {
		return sums{}, 0, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return sums{}, 0, fail("storing the download", err)
	}
	if err := os.Rename(tmp.Name(), blob); err != nil {
		return sums{}, 0, fail("storing the download", err)
	}
	return got, n, nil
}

// sizeErr is an input bigger than its cap.
func sizeErr(s Spec, max int64, found string) *VerifyError {
	return verifyErr(s, whatSize, fmt.Sprintf("at most %s (maxSize)", units.Bytes(max)), found)
}

// lock serialises work on one blob; it gives up when ctx is done.
func (f *Fetcher) lock(ctx context.Context, blob string) (func(), error) {
	v, _ := f.locks.LoadOrStore(blob, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fileMode keeps the bits of m that matter in an image: permissions, setuid, setgid
// and sticky.
func fileMode(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// progressEvery is how often a long download reports how far it is.
var progressEvery = 10 * time.Second

// progress logs, every progressEvery, how much of url the hasher has seen, so that a
// big download does not look stuck; the returned func stops it.
func (f *Fetcher) progress(url string, h *hasher, total int64) (stop func()) {
	if f.log == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				of := ""
				if total > 0 {
					of = " of " + units.Bytes(total)
				}
				f.logf("fetching %s: %s%s", url, units.Bytes(h.seen()), of)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
