package inputs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/internal/testpgp"
)

var jar = []byte("PK\x03\x04 not really a jar, but bytes all the same\n")

func TestFetchRefusesNonHTTPS(t *testing.T) {
	plain, accepted := plainListener(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/app.jar", func(w http.ResponseWriter, r *http.Request) { w.Write(jar) })
	mux.HandleFunc("/to-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+plain+"/app.jar", http.StatusFound)
	})
	mux.HandleFunc("/to-ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://"+plain+"/app.jar", http.StatusMovedPermanently)
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	f := newFetcher(t, inputs.Options{CAFile: writeCA(t, srv)})
	key := testpgp.NewKey(t, "vendor")
	kr := loadKeyring(t, testpgp.ArmoredPublic(t, key), testpgp.Fingerprint(key))

	for _, tc := range []struct {
		name, url, sig string
		field          string // field named in the error
		contains       []string
	}{
		{"http URL", "http://" + plain + "/app.jar", "", "inputs[0]", []string{`scheme "http"`}},
		{"upper-case HTTP URL", "HTTP://" + plain + "/app.jar", "", "inputs[0]", []string{`scheme "http"`}},
		{"ftp URL", "ftp://" + plain + "/app.jar", "", "inputs[0]", []string{`scheme "ftp"`}},
		{"no scheme", "//" + plain + "/app.jar", "", "inputs[0]", nil},
		{"redirect to http", srv.URL + "/to-http", "", "inputs[0]", []string{"a redirect to http://" + plain}},
		{"redirect to ftp", srv.URL + "/to-ftp", "", "inputs[0]", []string{"a redirect to ftp://" + plain}},
		{"http signature", srv.URL + "/app.jar", "http://" + plain + "/app.jar.asc", "inputs[0].signature", []string{"http://" + plain + "/app.jar.asc"}},
		{"signature redirect to http", srv.URL + "/app.jar", srv.URL + "/to-http", "inputs[0].signature", []string{"a redirect to http://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := inputs.Spec{Profile: "wso2is", Field: "inputs[0]", URL: tc.url, SHA256: sha256hex(jar), Signature: tc.sig}
			if tc.sig != "" {
				s.Keyring = kr
			}
			_, err := f.Fetch(context.Background(), s)
			ve := wantVerifyError(t, err, "https", append(tc.contains, `profile "wso2is"`, tc.field)...)
			if ve.Field != tc.field {
				t.Errorf("Field = %q, want %q", ve.Field, tc.field)
			}
			if n := accepted.Load(); n != 0 {
				t.Errorf("the plain listener accepted %d connections, want 0", n)
			}
		})
	}
}

func TestFetchChecksums(t *testing.T) {
	srv := newFiles(t, map[string][]byte{"/lib/app.jar": jar})
	for _, tc := range []struct {
		name           string
		sha256, sha512 string
		blob           string // cache path below blobs/
		log            string
	}{
		{"sha256", sha256hex(jar), "", "sha256/" + sha256hex(jar), "sha256 verified"},
		{"sha512 only", "", sha512hex(jar), "sha512/" + sha512hex(jar), "sha512 verified"},
		{"both", sha256hex(jar), sha512hex(jar), "sha256/" + sha256hex(jar), "sha256+sha512 verified"},
		{"upper-case hex", strings.ToUpper(sha256hex(jar)), "", "sha256/" + sha256hex(jar), "sha256 verified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			var log syncBuffer
			f := newFetcher(t, inputs.Options{CacheDir: cache, CAFile: srv.CAFile, Log: &log})
			st := newStage(t, f)
			url := srv.URL + "/lib/app.jar"
			v, err := st.Fetch(context.Background(), inputs.Spec{Profile: "p", Field: "inputs[0]", URL: url, SHA256: tc.sha256, SHA512: tc.sha512})
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(st.Dir(), "files", sha256hex(jar)); v.Local != want {
				t.Errorf("Local = %s, want the staged copy %s", v.Local, want)
			}
			if got, err := os.ReadFile(v.Local); err != nil || !bytes.Equal(got, jar) {
				t.Errorf("staged copy = %q, %v; want the served bytes", got, err)
			}
			if got, err := os.ReadFile(filepath.Join(cache, "blobs", filepath.FromSlash(tc.blob))); err != nil || !bytes.Equal(got, jar) {
				t.Errorf("cached blob = %q, %v; want the served bytes", got, err)
			}
			want := inputs.File{Rel: "app.jar", Type: "file", Mode: 0o644, Size: int64(len(jar)), SHA256: sha256hex(jar)}
			if v.Digest != "sha256:"+sha256hex(jar) || v.Size != int64(len(jar)) || v.Dir || len(v.Files) != 1 || v.Files[0] != want {
				t.Errorf("Verified = %+v, want digest sha256:%s, size %d, files [%+v]", v, sha256hex(jar), len(jar), want)
			}
			if v.Signer != "" {
				t.Errorf("Signer = %q for an unsigned input", v.Signer)
			}
			if want := fmt.Sprintf("fetched %s (%d B), %s\n", url, len(jar), tc.log); !strings.Contains(log.String(), want) {
				t.Errorf("log = %q, want a line %q", log.String(), want)
			}
		})
	}
}

func TestFetchChecksumFailures(t *testing.T) {
	srv := newFiles(t, map[string][]byte{"/app.jar": jar})
	other := []byte("other bytes")
	for _, tc := range []struct {
		name           string
		sha256, sha512 string
		what           string
		contains       []string
		requests       int64 // the server is not asked when the spec is bad
	}{
		{"none", "", "", "checksum", []string{"a sha256 or sha512 (one is required for every URL)", "found neither"}, 0},
		{"short sha256", "abc123", "", "checksum", []string{"64 hex digits", `"abc123" (6 characters)`}, 0},
		{"non-hex sha256", strings.Repeat("z", 64), "", "checksum", []string{"64 hex digits"}, 0},
		{"short sha512", "", sha256hex(jar), "checksum", []string{"a sha512 of 128 hex digits"}, 0},
		{"sha256 mismatch", sha256hex(other), "", "sha256", []string{"sha256 mismatch: expected " + sha256hex(other) + ", found " + sha256hex(jar)}, 1},
		{"sha512 mismatch", "", sha512hex(other), "sha512", []string{"sha512 mismatch: expected " + sha512hex(other) + ", found " + sha512hex(jar)}, 1},
		{"sha256 right, sha512 wrong", sha256hex(jar), sha512hex(other), "sha512", []string{"expected " + sha512hex(other)}, 1},
		{"sha256 wrong, sha512 right", sha256hex(other), sha512hex(jar), "sha256", []string{"found " + sha256hex(jar)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.requests.Store(0)
			cache := t.TempDir()
			f := newFetcher(t, inputs.Options{CacheDir: cache, CAFile: srv.CAFile})
			url := srv.URL + "/app.jar"
			_, err := f.Fetch(context.Background(), inputs.Spec{Profile: "apim", Field: "inputs[3]", URL: url, SHA256: tc.sha256, SHA512: tc.sha512})
			wantVerifyError(t, err, tc.what, append(tc.contains, `profile "apim", inputs[3] (`+url+")")...)
			if b := blobs(t, cache); len(b) != 0 {
				t.Errorf("the cache holds %q after a failed fetch, want nothing", b)
			}
			if n := srv.requests.Load(); n != tc.requests {
				t.Errorf("server got %d requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestFetchCache(t *testing.T) {
	srv := newFiles(t, map[string][]byte{"/app.jar": jar})
	cache := t.TempDir()
	var log syncBuffer
	f := newFetcher(t, inputs.Options{CacheDir: cache, CAFile: srv.CAFile, Log: &log})
	s := inputs.Spec{Profile: "p", Field: "inputs[0]", URL: srv.URL + "/app.jar", SHA256: sha256hex(jar)}
	ctx := context.Background()
	blob := filepath.Join(cache, "blobs", "sha256", sha256hex(jar))

	v, err := fetch(t, f, s)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("first fetch: %d requests, want 1", n)
	}

	t.Run("intact copy is used without a request", func(t *testing.T) {
		again, err := fetch(t, f, s)
		if err != nil {
			t.Fatal(err)
		}
		if n := srv.requests.Load(); n != 1 {
			t.Errorf("second fetch made a request: %d in all, want 1", n)
		}
		if again.Digest != v.Digest || again.Size != v.Size {
			t.Errorf("second fetch = %+v, want the first %+v", again, v)
		}
		if !strings.Contains(log.String(), "cached "+s.URL) {
			t.Errorf("log = %q, want a line saying the cached copy was used", log.String())
		}
	})

	t.Run("tampered copy is detected and replaced", func(t *testing.T) {
		if err := os.WriteFile(blob, []byte("evil"), 0o644); err != nil {
			t.Fatal(err)
		}
		again, err := fetch(t, f, s)
		if err != nil {
			t.Fatal(err)
		}
		if n := srv.requests.Load(); n != 2 {
			t.Errorf("fetch after tampering: %d requests in all, want 2", n)
		}
		if got, _ := os.ReadFile(blob); !bytes.Equal(got, jar) {
			t.Errorf("cached blob = %q after re-fetch, want the served bytes", got)
		}
		if got, _ := os.ReadFile(again.Local); !bytes.Equal(got, jar) {
			t.Errorf("staged copy = %q after re-fetch, want the served bytes", got)
		}
		if want := "no longer matches its sha256 (found " + sha256hex([]byte("evil")) + ")"; !strings.Contains(log.String(), want) {
			t.Errorf("log = %q, want it to say %q", log.String(), want)
		}
	})

	t.Run("tampered copy is not used when the server has changed too", func(t *testing.T) {
		if err := os.WriteFile(blob, []byte("evil"), 0o644); err != nil {
			t.Fatal(err)
		}
		srv.set("/app.jar", []byte("evil"))
		defer srv.set("/app.jar", jar)
		_, err := f.Fetch(ctx, s)
		wantVerifyError(t, err, "sha256", "found "+sha256hex([]byte("evil")))
		if b := blobs(t, cache); len(b) != 0 {
			t.Errorf("the cache holds %q, want the bad copy gone", b)
		}
	})
}

func TestFetchNetworkErrors(t *testing.T) {
	srv := newFiles(t, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	broken := httptest.NewTLSServer(mux)
	defer broken.Close()
	plainHTTP := httptest.NewServer(mux) // speaks HTTP where https is asked: the TLS handshake fails
	defer plainHTTP.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	f := newFetcher(t, inputs.Options{CAFile: srv.CAFile})
	brokenCA := newFetcher(t, inputs.Options{CAFile: writeCA(t, broken)})
	for _, tc := range []struct {
		name     string
		f        *inputs.Fetcher
		url      string
		contains string
	}{
		{"404", f, srv.URL + "/missing.jar", "fetching: HTTP 404 Not Found"},
		{"500", brokenCA, broken.URL + "/app.jar", "fetching: HTTP 500 Internal Server Error"},
		{"connection refused", f, "https://" + refused + "/app.jar", "connection refused"},
		{"TLS handshake failure", f, "https://" + strings.TrimPrefix(plainHTTP.URL, "http://") + "/app.jar", "fetching: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f.Fetch(context.Background(), inputs.Spec{Profile: "mi", Field: "inputs[1]", URL: tc.url, SHA256: sha256hex(jar)})
			var ve *inputs.VerifyError
			if errors.As(err, &ve) {
				t.Fatalf("error = %v, a VerifyError; want a plain network error", err)
			}
			wantContains(t, err, `profile "mi", inputs[1] (`+tc.url+")", tc.contains)
		})
	}
}

func TestFetchTLS(t *testing.T) {
	srv := newFiles(t, map[string][]byte{"/app.jar": jar})
	spec := inputs.Spec{Profile: "p", Field: "inputs[0]", URL: srv.URL + "/app.jar", SHA256: sha256hex(jar)}
	for _, tc := range []struct {
		name      string
		caFile    string
		sslCert   string
		untrusted bool
	}{
		{"CA not trusted", "", "", true},
		{"--ca-file", srv.CAFile, "", false},
		{"SSL_CERT_FILE", "", srv.CAFile, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SSL_CERT_FILE", tc.sslCert)
			f := newFetcher(t, inputs.Options{CAFile: tc.caFile})
			_, err := f.Fetch(context.Background(), spec)
			if !tc.untrusted {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				return
			}
			wantVerifyError(t, err, "tls", "not trusted", "--ca-file", "SSL_CERT_FILE", spec.URL)
		})
	}
}

func TestNewRejectsBadCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, caFile, sslCert, contains string
	}{
		{"missing CA file", filepath.Join(dir, "nope.pem"), "", "nope.pem"},
		{"CA file without PEM", notPEM, "", "no PEM certificate"},
		{"SSL_CERT_FILE without PEM", "", notPEM, "SSL_CERT_FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SSL_CERT_FILE", tc.sslCert)
			_, err := inputs.New(inputs.Options{CacheDir: dir, CAFile: tc.caFile})
			wantContains(t, err, tc.contains)
		})
	}
}

func TestFetchContextCancel(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done() // never finish the body
	}))
	defer srv.Close()
	cache := t.TempDir()
	f := newFetcher(t, inputs.Options{CacheDir: cache, CAFile: writeCA(t, srv)})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := f.Fetch(ctx, inputs.Spec{Profile: "p", Field: "inputs[0]", URL: srv.URL + "/big.zip", SHA256: sha256hex(jar)})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
		wantContains(t, err, srv.URL+"/big.zip")
	case <-time.After(30 * time.Second):
		t.Fatal("Fetch did not return after its context was cancelled")
	}
	if b := blobs(t, cache); len(b) != 0 {
		t.Errorf("the cache holds %q after a cancelled download, want nothing", b)
	}
}

func TestFetchSpecErrors(t *testing.T) {
	f := newFetcher(t, inputs.Options{})
	for _, tc := range []struct {
		name     string
		spec     inputs.Spec
		contains string
	}{
		{"URL and path", inputs.Spec{URL: "https://h/x", Path: "/x", SHA256: sha256hex(jar)}, "both a URL"},
		{"neither", inputs.Spec{}, "neither a URL nor a path"},
		{"signature without keyring", inputs.Spec{URL: "https://h/x", SHA256: sha256hex(jar), Signature: "https://h/x.asc"}, "needs a keyring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Profile, tc.spec.Field = "p", "inputs[4]"
			_, err := f.Fetch(context.Background(), tc.spec)
			var ve *inputs.VerifyError
			if errors.As(err, &ve) {
				t.Errorf("error = %v, a VerifyError; want a plain error", err)
			}
			wantContains(t, err, `profile "p", inputs[4]`, tc.contains)
		})
	}
}

func TestFetchAll(t *testing.T) {
	srv := newFiles(t, map[string][]byte{"/a.jar": jar, "/b.jar": []byte("b")})
	root := t.TempDir()
	local := filepath.Join(root, "deployment.toml")
	if err := os.WriteFile(local, []byte("[server]\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	f := newFetcher(t, inputs.Options{CAFile: srv.CAFile, Concurrency: 2})
	good := []inputs.Spec{
		{Profile: "p", Field: "inputs[0]", URL: srv.URL + "/a.jar", SHA256: sha256hex(jar)},
		{Profile: "p", Field: "inputs[1]", URL: srv.URL + "/b.jar", SHA512: sha512hex([]byte("b"))},
		{Profile: "p", Field: "inputs[2]", Path: local, Root: root},
		{Profile: "p", Field: "inputs[3]", URL: srv.URL + "/a.jar", SHA256: sha256hex(jar)}, // same blob twice
	}

	t.Run("all good, in spec order", func(t *testing.T) {
		got, err := f.FetchAll(context.Background(), good)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(good) {
			t.Fatalf("got %d results, want %d", len(got), len(good))
		}
		for i, v := range got {
			if v.Spec.Field != good[i].Field {
				t.Errorf("result %d is %s, want %s", i, v.Spec.Field, good[i].Field)
			}
		}
	})

	t.Run("every failure reported, in spec order", func(t *testing.T) {
		specs := append([]inputs.Spec(nil), good...)
		specs = append(specs,
			inputs.Spec{Profile: "p", Field: "inputs[4]", URL: "http://example.invalid/x.jar", SHA256: sha256hex(jar)},
			inputs.Spec{Profile: "p", Field: "inputs[5]", URL: srv.URL + "/b.jar", SHA256: sha256hex([]byte("not b"))},
			inputs.Spec{Profile: "p", Field: "inputs[6]", Path: filepath.Join(root, "missing.xml"), Root: root},
			// Not a hash the cache holds: a cached blob is used whatever URL names it.
			inputs.Spec{Profile: "p", Field: "inputs[7]", URL: srv.URL + "/gone.jar", SHA256: sha256hex([]byte("gone"))},
		)
		got, err := f.FetchAll(context.Background(), specs)
		if got != nil {
			t.Errorf("results = %v on failure, want none", got)
		}
		wantContains(t, err, "inputs[4]", "inputs[5]", "inputs[6]", "inputs[7]", "HTTP 404")
		msg := err.Error()
		for i := 4; i < 7; i++ {
			a, b := strings.Index(msg, "inputs["+string(rune('0'+i))+"]"), strings.Index(msg, "inputs["+string(rune('1'+i))+"]")
			if a > b {
				t.Errorf("inputs[%d] is reported after inputs[%d]:\n%s", i, i+1, msg)
			}
		}
		for _, good := range []string{"inputs[0]", "inputs[1]", "inputs[2]", "inputs[3]"} {
			if strings.Contains(msg, good) {
				t.Errorf("error names %s, which verified:\n%s", good, msg)
			}
		}
		if lines := strings.Count(msg, "\n") + 1; lines != 4 {
			t.Errorf("error has %d lines, want one per failure (4):\n%s", lines, msg)
		}
		var ve *inputs.VerifyError
		if !errors.As(err, &ve) {
			t.Errorf("errors.As(*VerifyError) found none in %v", err)
		}
	})
}

// TestDownloadProgress: a download that takes a while reports how far it is.
func TestDownloadProgress(t *testing.T) {
	defer inputs.SetProgressEvery(inputs.SetProgressEvery(20 * time.Millisecond))
	slow := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "8")
		w.Write([]byte("abcd"))
		w.(http.Flusher).Flush()
		<-slow
		w.Write([]byte("efgh"))
	}))
	defer srv.Close()
	var log syncBuffer
	f := newFetcher(t, inputs.Options{CAFile: writeCA(t, srv), Log: &log})
	go func() { time.Sleep(200 * time.Millisecond); close(slow) }()
	if _, err := f.Fetch(context.Background(), inputs.Spec{Profile: "p", Field: "inputs[0]", URL: srv.URL + "/x.jar", SHA256: sha256hex([]byte("abcdefgh"))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "fetching "+srv.URL+"/x.jar: 4 B of 8 B") {
		t.Errorf("no progress line for a slow download:\n%s", log.String())
	}
}
