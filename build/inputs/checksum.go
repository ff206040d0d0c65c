package inputs

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync/atomic"
)

// copyBuffer is the buffer size for hashing and downloading; bigger than io.Copy's
// 32 KiB to spend fewer system calls on large files.
const copyBuffer = 256 << 10

// sums holds checksums in lowercase hex; "" means not given (or not computed).
type sums struct{ sha256, sha512 string }

// parseSums validates the checksums a spec declares. Hex is accepted in either case
// and compared in lowercase.
func parseSums(s Spec) (sums, error) {
	want := sums{sha256: strings.ToLower(s.SHA256), sha512: strings.ToLower(s.SHA512)}
	for _, c := range []struct {
		name, value string
		size        int
	}{{"sha256", want.sha256, sha256.Size}, {"sha512", want.sha512, sha512.Size}} {
		if c.value == "" {
			continue
		}
		if _, err := hex.DecodeString(c.value); err != nil || len(c.value) != 2*c.size {
			return sums{}, verifyErr(s, whatChecksum,
				fmt.Sprintf("a %s of %d hex digits", c.name, 2*c.size),
				fmt.Sprintf("%q (%d characters)", c.value, len(c.value)))
		}
	}
	return want, nil
}

func (w sums) empty() bool { return w.sha256 == "" && w.sha512 == "" }

// check compares got against the expected sums; a mismatch is a *VerifyError.
func (w sums) check(s Spec, got sums) error {
	if w.sha256 != "" && w.sha256 != got.sha256 {
		return verifyErr(s, whatSHA256, w.sha256, got.sha256)
	}
	if w.sha512 != "" && w.sha512 != got.sha512 {
		return verifyErr(s, whatSHA512, w.sha512, got.sha512)
	}
	return nil
}

// verified says which sums were checked, for the log.
func (w sums) verified() string {
	switch {
	case w.sha256 != "" && w.sha512 != "":
		return "sha256+sha512 verified"
	case w.sha256 != "":
		return "sha256 verified"
	case w.sha512 != "":
		return "sha512 verified"
	}
	return "no checksum declared"
}

// hasher computes sha256 always (the digest the build uses) and sha512 when asked.
type hasher struct {
	h256, h512 hash.Hash
	// n counts the bytes written; a progress report reads it while they stream.
	n atomic.Int64
}

func newHasher(with512 bool) *hasher {
	h := &hasher{h256: sha256.New()}
	if with512 {
		h.h512 = sha512.New()
	}
	return h
}

func (h *hasher) Write(p []byte) (int, error) {
	h.h256.Write(p)
	if h.h512 != nil {
		h.h512.Write(p)
	}
	h.n.Add(int64(len(p)))
	return len(p), nil
}

// seen is how many bytes have been hashed so far.
func (h *hasher) seen() int64 { return h.n.Load() }

func (h *hasher) sums() sums {
	s := sums{sha256: hex.EncodeToString(h.h256.Sum(nil))}
	if h.h512 != nil {
		s.sha512 = hex.EncodeToString(h.h512.Sum(nil))
	}
	return s
}

// ctxReader stops a long read (hashing a big file) when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
