package standin

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// defaultLevel compresses the small layers; the filler is stored (random data does not
// compress, and trying costs more than the benchmarks it serves).
const defaultLevel = gzip.DefaultCompression

// layer is a gzip-compressed OCI layer whose uncompressed tar stream is generated on
// demand, so that a large filler is never held in memory. Digest, DiffID and size are
// computed in one pass when the layer is made; a small layer also keeps its compressed
// bytes from that pass.
type layer struct {
	gen        func(io.Writer) error // writes the uncompressed tar stream
	level      int
	compressed []byte // nil: compress again on every call
	digest     v1.Hash
	diffID     v1.Hash
	size       int64
}

var _ v1.Layer = (*layer)(nil)

// newLayer makes a layer of the tar stream that gen writes, gzip-compressed at level;
// keep holds the compressed bytes in memory.
func newLayer(gen func(io.Writer) error, level int, keep bool) (*layer, error) {
	l := &layer{gen: gen, level: level}
	diff := sha256.New()
	comp := sha256.New()
	var kept bytes.Buffer
	var sink io.Writer = comp
	if keep {
		sink = io.MultiWriter(comp, &kept)
	}
	counter := &countingWriter{w: sink}
	zw, err := gzip.NewWriterLevel(counter, level)
	if err != nil {
		return nil, err
	}
	if err := gen(io.MultiWriter(diff, zw)); err != nil {
		return nil, fmt.Errorf("standin: generating a layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	l.diffID = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", diff.Sum(nil))}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", comp.Sum(nil))}
	l.size = counter.n
	if keep {
		l.compressed = kept.Bytes()
	}
	return l, nil
}

func (l *layer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *layer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *layer) Size() (int64, error)                { return l.size, nil }
func (l *layer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Uncompressed streams the tar.
func (l *layer) Uncompressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(l.gen(pw)) }()
	return pr, nil
}

// Compressed streams the gzip of the tar; the gzip header carries no name and no time,
// so the bytes are the same on every call.
func (l *layer) Compressed() (io.ReadCloser, error) {
	if l.compressed != nil {
		return io.NopCloser(bytes.NewReader(l.compressed)), nil
	}
	pr, pw := io.Pipe()
	go func() {
		zw, err := gzip.NewWriterLevel(pw, l.level)
		if err == nil {
			err = l.gen(zw)
		}
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fillerLayer holds one root-owned file at FillerPath of o.FillerBytes bytes from a
// ChaCha8 stream seeded by the product, version and size: incompressible and the same
// every time.
func fillerLayer(o Options) (v1.Layer, error) {
	seed := sha256.New()
	fmt.Fprintf(seed, "wso2img standin filler\x00%s\x00%s\x00", o.Product, o.Version)
	_ = binary.Write(seed, binary.BigEndian, o.FillerBytes)
	var key [32]byte
	copy(key[:], seed.Sum(nil))

	size := o.FillerBytes
	mtime := o.Created
	return newLayer(func(w io.Writer) error {
		tw := tar.NewWriter(w)
		name := strings.TrimPrefix(FillerPath, "/")
		for _, dir := range []string{path.Dir(path.Dir(name)), path.Dir(name)} {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, rand.NewChaCha8(key), size); err != nil {
			return err
		}
		return tw.Close()
	}, gzip.NoCompression, false)
}
