package inputs_test

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wso2img/wso2img/build/inputs"
)

// benchSize is the size of the file every hashing benchmark reads, so that their MB/s
// compare directly.
const benchSize = 64 << 20

// benchData returns benchSize random bytes.
func benchData(b *testing.B) []byte {
	b.Helper()
	data := make([]byte, benchSize)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkFetchHash measures a cache-miss fetch: download of a 64 MiB file from a
// local TLS server, streamed to the cache while hashing (sha256, as most profiles declare), and the
// rename into place. MB/s is the end-to-end rate.
func BenchmarkFetchHash(b *testing.B) {
	const size = benchSize
	data := benchData(b)
	srv := newFiles(b, map[string][]byte{"/wso2am-4.2.0.zip": data})
	cache := b.TempDir()
	f := newFetcher(b, inputs.Options{CacheDir: cache, CAFile: srv.CAFile})
	s := inputs.Spec{Profile: "bench", Field: "inputs[0]", URL: srv.URL + "/wso2am-4.2.0.zip", SHA256: sha256hex(data)}
	ctx := context.Background()
	b.SetBytes(size)
	for b.Loop() {
		v, err := f.Fetch(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(filepath.Join(cache, "blobs")); err != nil || v.Size != size {
			b.Fatalf("size %d, cleaning the cache: %v", v.Size, err)
		}
		b.StartTimer()
	}
	if n := srv.requests.Load(); n < int64(b.N) {
		b.Errorf("%d requests for %d fetches: some were cache hits", n, b.N)
	}
}

// BenchmarkHashLocal measures a local file input with a declared sha256: the file (in
// the page cache after the first iteration) is read, hashed and copied into a stage as
// it is read (what the build then reads), and the stage removed. It is the rate to
// compare with sha256sum's (BenchmarkSHA256Sum): the difference is the copy.
func BenchmarkHashLocal(b *testing.B) {
	data := benchData(b)
	root := b.TempDir()
	file := filepath.Join(root, "wso2am-4.2.0.zip")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Fatal(err)
	}
	f := newFetcher(b, inputs.Options{})
	s := inputs.Spec{Profile: "bench", Field: "inputs[0]", Path: file, Root: root, SHA256: sha256hex(data)}
	ctx := context.Background()
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := f.Fetch(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSHA256Sum runs coreutils' sha256sum on a file of the same size, in the page
// cache like the one BenchmarkHashLocal reads: the yardstick for wso2img's hashing. The
// start of the process is included (about a millisecond, well under 1% at this size).
func BenchmarkSHA256Sum(b *testing.B) {
	sum, err := exec.LookPath("sha256sum")
	if err != nil {
		b.Skip("sha256sum (coreutils) is not on $PATH")
	}
	data := benchData(b)
	file := filepath.Join(b.TempDir(), "wso2am-4.2.0.zip")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Fatal(err)
	}
	want := sha256hex(data)
	b.SetBytes(benchSize)
	for b.Loop() {
		out, err := exec.Command(sum, file).Output()
		if err != nil {
			b.Fatal(err)
		}
		if len(out) < 64 || string(out[:64]) != want {
			b.Fatalf("sha256sum printed %q, want %s", out, want)
		}
	}
}
