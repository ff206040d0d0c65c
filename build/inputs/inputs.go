// Package inputs fetches and verifies the files a profile adds to an image. It owns
// fetching (HTTPS only, with stall, size and Content-Length checks, and credentials from
// the environment or netrc), checksum verification, the content-addressed download
// cache, GPG detached-signature verification, the resolution of local files and
// directories, the extraction of verified archives and the writing of trust stores.
// Everything fails closed: an input is returned only once every check declared for it
// has passed.
//
// What is verified is what is built: a Stage copies the bytes while it hashes them
// into a private directory, and the build reads only those copies, never the profile's
// folder or the cache, which could change in between.
//
// It must not know about profiles' YAML, BuildKit or registries: callers hand it
// resolved Specs and get back Verified inputs that the build reads.
package inputs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wso2img/wso2img/internal/fstree"
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
	// Auth says where the credentials of URL come from; nil uses the netrc entry of
	// URL's host, if there is one. They are sent to that host only (and to a signature
	// URL on the same host), over https only.
	Auth *Auth
	// MaxSize bounds the input's bytes (the download or the local file, and the files
	// an extracted archive holds); 0 means Options.MaxSize.
	MaxSize int64
	// Extract unpacks the verified file (zip, tar or tar.gz) with build/archive: the
	// input becomes a directory of what it holds.
	Extract bool
}

// Auth names the environment variable that holds an input's credentials.
type Auth struct {
	// Env is the variable: a token, sent as "Authorization: Bearer <token>", or with
	// Basic "user:password", sent as HTTP basic authentication.
	Env   string
	Basic bool
}

// Verified is an input that passed every check declared for it.
type Verified struct {
	Spec Spec
	// Local is what the build reads: the verified copy in the Stage (files/<sha256> for
	// a file, trees/<digest> for a directory or an extracted archive); "" when the input
	// was only verified (Fetcher.Fetch).
	Local string
	// Dir says whether Local is a directory.
	Dir bool
	// Digest is "sha256:<hex>" of the file, or for a directory of its canonical tree
	// listing: one line per entry, sorted by path, with the type, mode, size and sha256
	// of files and the targets of symlinks, and no timestamps (format on fstree.Digest).
	Digest string
	// Size is the size in bytes; for a directory the sum of its regular files.
	Size int64
	// Files lists a file as one entry (Rel is the base name of the URL path or of the
	// file), and a directory as every entry below it, sorted by Rel.
	Files []File
	// Signer is the uppercase hex fingerprint of the pinned primary key whose key or
	// subkey made the signature, or "" when the input has no signature.
	Signer string
	// Archive is "sha256:<hex>" of the archive an extracted input came from (Digest is
	// then the digest of the tree it holds), or "".
	Archive string
}

// File is one entry of a verified input (see fstree.Entry).
type File = fstree.Entry

// Defaults for Options.
const (
	DefaultMaxSize      = 2 << 30 // 2 GiB
	DefaultStallTimeout = 60 * time.Second
)

// Options configure a Fetcher. The zero value is usable.
type Options struct {
	// CacheDir holds downloaded blobs and the staging directories; default
	// os.UserCacheDir()/wso2img (which honours XDG_CACHE_HOME).
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
	// MaxSize bounds each input that sets no size of its own (Spec.MaxSize); default
	// DefaultMaxSize.
	MaxSize int64
	// StallTimeout fails a download that receives no byte for this long, from the
	// request on (connecting, TLS, headers, body); default DefaultStallTimeout.
	StallTimeout time.Duration
	// Netrc is the netrc file whose machine entries give credentials by host; "" means
	// $NETRC, else ~/.netrc when it exists. A file named here or by $NETRC must exist.
	Netrc string
}

// Fetcher fetches and verifies inputs. It is safe for concurrent use.
type Fetcher struct {
	client      *httpClient
	cacheDir    string
	blobs       string
	maxSize     int64
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
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	netrc, err := loadNetrc(opts.Netrc)
	if err != nil {
		return nil, err
	}
	c, err := newHTTPClient(opts.CAFile, opts.UserAgent, opts.StallTimeout, netrc)
	if err != nil {
		return nil, err
	}
	return &Fetcher{
		client:      c,
		cacheDir:    opts.CacheDir,
		blobs:       filepath.Join(opts.CacheDir, "blobs"),
		maxSize:     opts.MaxSize,
		log:         opts.Log,
		concurrency: opts.Concurrency,
	}, nil
}

// Fetch verifies one input and keeps nothing: the Verified it returns has no Local.
// A build reads verified copies, which a Stage keeps (see Stage.Fetch); errors are as
// Stage.Fetch gives them.
func (f *Fetcher) Fetch(ctx context.Context, s Spec) (*Verified, error) {
	vs, err := f.FetchAll(ctx, []Spec{s})
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// FetchAll verifies every spec, keeping nothing, as Stage.FetchAll does.
func (f *Fetcher) FetchAll(ctx context.Context, specs []Spec) ([]*Verified, error) {
	st, err := f.NewStage()
	if err != nil {
		return nil, err
	}
	defer st.Close()
	vs, err := st.FetchAll(ctx, specs)
	for _, v := range vs {
		v.Local = ""
	}
	return vs, err
}

// maxSizeOf is the most bytes s may have.
func (f *Fetcher) maxSizeOf(s Spec) int64 {
	if s.MaxSize > 0 {
		return s.MaxSize
	}
	return f.maxSize
}

// source names the input in messages: its URL (without anything that could be a
// credential) or its path.
func (s Spec) source() string {
	if s.URL != "" {
		return redact(s.URL)
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
