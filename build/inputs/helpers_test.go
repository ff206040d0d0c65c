package inputs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wso2img/wso2img/build/inputs"
)

// fixedTime is the Last-Modified of served files.
var fixedTime = time.Unix(1565855673, 0)

// files is an https server of in-memory files that counts the requests it gets.
type files struct {
	*httptest.Server
	CAFile   string
	mu       sync.Mutex
	content  map[string][]byte
	requests atomic.Int64
}

func newFiles(t testing.TB, content map[string][]byte) *files {
	t.Helper()
	f := &files{content: map[string][]byte{}}
	for k, v := range content {
		f.content[k] = v
	}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		f.mu.Lock()
		b, ok := f.content[r.URL.Path]
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, fixedTime, bytes.NewReader(b))
	}))
	// Tests that distrust the server make it log failed handshakes; keep the output clean.
	f.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.StartTLS()
	t.Cleanup(f.Close)
	f.CAFile = writeCA(t, f.Server)
	return f
}

func (f *files) set(path string, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.content[path] = b
}

// writeCA writes the test server's certificate as a PEM CA bundle.
func writeCA(t testing.TB, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// plainListener accepts plain TCP connections and counts them: an http:// URL aimed
// at it must never make it count.
func plainListener(t testing.TB) (addr string, accepted *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return l.Addr().String(), accepted
}

// syncBuffer is a log that concurrent fetches may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFetcher(t testing.TB, opts inputs.Options) *inputs.Fetcher {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	f, err := inputs.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f
}

// newStage makes a stage of f that the test closes.
func newStage(t testing.TB, f *inputs.Fetcher) *inputs.Stage {
	t.Helper()
	st, err := f.NewStage()
	if err != nil {
		t.Fatalf("NewStage: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// fetch fetches s into a new stage of f.
func fetch(t testing.TB, f *inputs.Fetcher, s inputs.Spec) (*inputs.Verified, error) {
	t.Helper()
	return newStage(t, f).Fetch(context.Background(), s)
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sha512hex(b []byte) string {
	s := sha512.Sum512(b)
	return hex.EncodeToString(s[:])
}

// wantVerifyError fails unless err is a *VerifyError about what whose message has
// every one of contains.
func wantVerifyError(t testing.TB, err error, what string, contains ...string) *inputs.VerifyError {
	t.Helper()
	var ve *inputs.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want a *VerifyError about %q", err, err, what)
	}
	if ve.What != what {
		t.Errorf("VerifyError.What = %q, want %q (error: %v)", ve.What, what, err)
	}
	wantContains(t, err, contains...)
	return ve
}

func wantContains(t testing.TB, err error, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", contains)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not contain %q", err, c)
		}
	}
}

// blobs lists every file under the cache's blobs directory, temporary ones included.
func blobs(t testing.TB, cacheDir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(cacheDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// loadKeyring writes a keyring file and loads it with the pinned fingerprints.
func loadKeyring(t testing.TB, keyring []byte, pinned ...string) *inputs.Keyring {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys.asc")
	if err := os.WriteFile(p, keyring, 0o644); err != nil {
		t.Fatal(err)
	}
	kr, err := inputs.LoadKeyring(p, pinned)
	if err != nil {
		t.Fatalf("LoadKeyring: %v", err)
	}
	return kr
}

// sameTree fails unless staged is a copy of src: the same bytes for a file; for a
// directory the same entries, types, permission bits, contents and symlink targets.
func sameTree(t testing.TB, src, staged string) {
	t.Helper()
	list := func(root string) map[string]string {
		out := map[string]string{}
		fi, err := os.Lstat(root)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() {
			b, err := os.ReadFile(root)
			if err != nil {
				t.Fatal(err)
			}
			out["."] = "file " + string(b)
			return out
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			info, err := d.Info()
			if err != nil {
				return err
			}
			switch m := info.Mode(); {
			case m.IsDir():
				out[rel] = "dir " + m.Perm().String()
			case m&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				out[rel] = "symlink " + target
			default:
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				out[rel] = "file " + m.Perm().String() + " " + string(b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, got := list(src), list(staged)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("staged %s = %q, want %q (as in %s)", k, got[k], v, src)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("staged %s is not in %s", k, src)
		}
	}
}
