package inputs_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/wso2img/wso2img/build/inputs"
)

// BenchmarkFetchHash measures a cache-miss fetch: download of a 64 MiB file from a
// local TLS server, streamed to the cache while hashing (sha256, as most profiles declare), and the
// rename into place. MB/s is the end-to-end rate.
func BenchmarkFetchHash(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
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
