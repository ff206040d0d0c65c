package archive

import (
	"bufio"
	"io"
)

// countingReader counts the bytes its consumer took. It is an io.ByteReader, so that
// compress/flate and compress/gzip read through it without a buffer of their own: the
// count is what the decompressor consumed, not what it read ahead.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func newCountingReader(r io.Reader) *countingReader {
	return &countingReader{r: bufio.NewReaderSize(r, 32<<10)}
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}
