// Package inputs fetches and verifies the files a profile adds to an image. It owns
// fetching (HTTPS only), checksum verification, the content-addressed download cache,
// GPG detached-signature verification and the resolution of local files and
// directories. Everything fails closed: an input is returned only once every check
// declared for it has passed.
//
// It must not know about profiles' YAML, BuildKit or registries: callers hand it
// resolved Specs and get back Verified inputs that the build reads.
package inputs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Spec is one input as a profile declares it, already resolved by the caller.
type Spec struct {
	// Profile is the profile's name, for messages.
	Profile string
	// Field is where the input is declared, e.g. "inputs[2]", for messages.
	Field string
	// URL is the https URL of a remote input, or "". Exactly one of URL and Path is set.
	URL string
	// Path is the absolute path of a local file or directory, or "".
	Path string
	// Root is the profile's folder: a local input, and any symlink in it, must stay
	// inside it.
	Root string
	// SHA256 is the expected sha256 in hex. A URL needs at least one of SHA256 and
	// SHA512; a local file may have them (then they are checked); a directory may not.
	SHA256 string
	// SHA512 is the expected sha512 in hex.
	SHA512 string
	// Signature is the https URL or absolute local path of a detached GPG signature
	// (armored or binary) of the input, or "". Not allowed for a directory.
	Signature string
	// Keyring holds the trusted keys; required when Signature is set.
	Keyring *Keyring
}

// Verified is an input that passed every check declared for it.
type Verified struct {
	Spec Spec
	// Local is what the build reads: the cache blob for a URL, the symlink-resolved
	// local file or directory.
	Local string
	// Dir says whether Local is a directory.
	Dir bool
	// Digest is "sha256:<hex>" of the file, or for a directory of its canonical tree
	// listing: one line per entry, sorted by path, with the type, mode, size and sha256
	// of files and the targets of symlinks, and no timestamps (format on treeDigest).
	Digest string
	// Size is the size in bytes; for a directory the sum of its regular files.
	Size int64
	// Files lists a file as one entry (Rel is the base name of the URL path or of the
	// file), and a directory as every entry below it, sorted by Rel.
	Files []File
	// Signer is the uppercase hex fingerprint of the pinned primary key whose key or
	// subkey made the signature, or "" when the input has no signature.
	Signer string
}

// File is one entry of a verified input.
type File struct {
	// Rel is the slash-separated path relative to the input root; never "".
	Rel string
	// Type is "file", "dir" or "symlink".
	Type string
	// Mode holds the permission bits (and setuid, setgid, sticky) as found on disk;
	// the build normalises them later.
	Mode fs.FileMode
	// Size is the size in bytes of a file.
	Size int64
	// SHA256 is the hex sha256 of a file.
	SHA256 string
	// Target is the target of a symlink.
	Target string
}

// Options configure a Fetcher. The zero value is usable.
type Options struct {
	// CacheDir holds downloaded blobs; default os.UserCacheDir()/wso2img (which
	// honours XDG_CACHE_HOME).
	CacheDir string
	// CAFile is an extra PEM CA bundle trusted for HTTPS, on top of the system roots
	// and SSL_CERT_FILE.
	CAFile string
	// UserAgent is sent with every request; default "wso2img".
	UserAgent string
	// Log receives one progress line per input; nil is silent.
	Log io.Writer
	// Concurrency bounds how many inputs FetchAll works on at once; default 4.
	Concurrency int
}

// Fetcher fetches and verifies inputs. It is safe for concurrent use.
type Fetcher struct {
	client      *httpClient
	blobs       string
	log         io.Writer
	logMu       sync.Mutex
	concurrency int
	// locks serialises work on one cache blob within this process, so that two inputs
	// with the same checksum do not delete each other's download.
	locks sync.Map // blob path -> chan struct{}
}

// New makes a Fetcher: one HTTPS client and one cache.
func New(opts Options) (*Fetcher, error) {
	if opts.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("finding the cache directory (set XDG_CACHE_HOME or --cache-dir): %w", err)
		}
		opts.CacheDir = filepath.Join(dir, "wso2img")
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "wso2img"
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	c, err := newHTTPClient(opts.CAFile, opts.UserAgent)
	if err != nil {
		return nil, err
	}
	return &Fetcher{
		client:      c,
		blobs:       filepath.Join(opts.CacheDir, "blobs"),
		log:         opts.Log,
		concurrency: opts.Concurrency,
	}, nil
}

// Fetch fetches (or resolves) one input and verifies it. A failed check is a
// *VerifyError; other failures (network, I/O, a malformed Spec) are plain errors.
// Every error names the profile, the field and the source.
func (f *Fetcher) Fetch(ctx context.Context, s Spec) (*Verified, error) {
	switch {
	case s.URL != "" && s.Path != "":
		return nil, fmt.Errorf("profile %q, %s: both a URL (%s) and a path (%s) are set; an input has one of them", s.Profile, s.Field, s.URL, s.Path)
	case s.URL == "" && s.Path == "":
		return nil, fmt.Errorf("profile %q, %s: neither a URL nor a path is set", s.Profile, s.Field)
	}
	if s.Signature != "" && s.Keyring == nil {
		return nil, fmt.Errorf("%s: a signature (%s) needs a keyring with pinned fingerprints, and none is set", where(s.Profile, s.Field, s.source()), s.Signature)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", where(s.Profile, s.Field, s.source()), err)
	}
	if s.URL != "" {
		return f.fetchURL(ctx, s)
	}
	return f.fetchLocal(ctx, s)
}

// FetchAll fetches and verifies every spec, a few at a time, and reports all failures
// at once (joined, in spec order) so that a user can fix every bad input in one go.
// The results are in spec order; on any failure there are none.
func (f *Fetcher) FetchAll(ctx context.Context, specs []Spec) ([]*Verified, error) {
	out := make([]*Verified, len(specs))
	errs := make([]error, len(specs))
	var g errgroup.Group
	g.SetLimit(f.concurrency)
	for i, s := range specs {
		g.Go(func() error {
			out[i], errs[i] = f.Fetch(ctx, s)
			return nil // keep going: every failure is reported
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func (s Spec) source() string {
	if s.URL != "" {
		return s.URL
	}
	return s.Path
}

// where is the prefix of every message about an input.
func where(profile, field, source string) string {
	return fmt.Sprintf("profile %q, %s (%s)", profile, field, source)
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.log == nil {
		return
	}
	f.logMu.Lock()
	defer f.logMu.Unlock()
	fmt.Fprintf(f.log, format+"\n", args...)
}
