package inputs

import (
	"context"
	"errors"
	"fmt"
	"github.com/wso2img/wso2img/internal/units"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"
)

// fetchURL downloads a remote input into the cache (or re-verifies the cached copy)
// and checks its checksums and signature.
func (f *Fetcher) fetchURL(ctx context.Context, s Spec) (*Verified, error) {
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
		return nil, fmt.Errorf("%s: waiting for the cache: %w", where(s.Profile, s.Field, s.URL), err)
	}
	defer unlock()

	got, size, hit, err := f.cached(ctx, s, blob, want)
	if err != nil {
		return nil, err
	}
	verb := "cached"
	if !hit {
		verb = "fetched"
		if got, size, err = f.download(ctx, s, u, blob, want); err != nil {
			return nil, err
		}
	}
	fi, err := os.Stat(blob)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the cache: %w", where(s.Profile, s.Field, s.URL), err)
	}
	rel := path.Base(u.Path)
	if rel == "/" || rel == "." {
		rel = "download" // a URL without a file name; the profile's dest names it
	}
	v := &Verified{
		Spec:   s,
		Local:  blob,
		Digest: "sha256:" + got.sha256,
		Size:   size,
		Files:  []File{{Rel: rel, Type: "file", Mode: fileMode(fi.Mode()), Size: size, SHA256: got.sha256}},
	}
	msg := fmt.Sprintf("%s %s (%s), %s", verb, s.URL, units.Bytes(size), want.verified())
	if s.Signature != "" {
		if v.Signer, err = f.verifySignature(ctx, s, blob); err != nil {
			return nil, err
		}
		msg += ", gpg signature by " + v.Signer + " verified"
	}
	f.logf("%s", msg)
	return v, nil
}

// cached re-verifies a cached blob. A blob that no longer matches (tampered with or
// corrupted) is logged and deleted, and reported as a miss so it is fetched again.
func (f *Fetcher) cached(ctx context.Context, s Spec, blob string, want sums) (sums, int64, bool, error) {
	fi, err := os.Lstat(blob)
	if errors.Is(err, fs.ErrNotExist) {
		return sums{}, 0, false, nil
	}
	if err != nil {
		return sums{}, 0, false, fmt.Errorf("%s: reading the cache: %w", where(s.Profile, s.Field, s.URL), err)
	}
	var bad string
	var got sums
	var size int64
	if !fi.Mode().IsRegular() {
		bad = "is not a regular file"
	} else {
		got, size, err = hashFile(ctx, blob, want.sha512 != "")
		if err != nil {
			return sums{}, 0, false, fmt.Errorf("%s: re-verifying the cached copy %s: %w", where(s.Profile, s.Field, s.URL), blob, err)
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
	f.logf("cached copy %s of %s %s: deleting it and fetching again", blob, s.URL, bad)
	if err := os.Remove(blob); err != nil {
		return sums{}, 0, false, fmt.Errorf("%s: deleting the bad cached copy: %w", where(s.Profile, s.Field, s.URL), err)
	}
	return sums{}, 0, false, nil
}

// download streams the URL into a temporary file next to blob, hashing as it goes,
// and renames it into place only once the checksums match.
func (f *Fetcher) download(ctx context.Context, s Spec, u *url.URL, blob string, want sums) (_ sums, _ int64, err error) {
	fail := func(doing string, err error) error {
		return fmt.Errorf("%s: %s: %w", where(s.Profile, s.Field, s.URL), doing, err)
	}
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return sums{}, 0, fail("making the cache directory", err)
	}
	resp, err := f.client.get(ctx, s, u)
	if err != nil {
		return sums{}, 0, err
	}
	defer resp.Body.Close()

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
	stop := f.progress(s.URL, h, resp.ContentLength)
	_, err = io.CopyBuffer(io.MultiWriter(tmp, h), resp.Body, make([]byte, copyBuffer))
	stop()
	if err != nil {
		return sums{}, 0, fail("downloading", err)
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
	return got, h.seen(), nil
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
