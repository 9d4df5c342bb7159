package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func sized(size int32, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(size)), body...)
}

func TestReadFrame(t *testing.T) {
	t.Run("frames then clean EOF", func(t *testing.T) {
		r := bytes.NewReader(append(sized(3, []byte("abc")), sized(0, nil)...))
		got, err := ReadFrame(r, MaxRequestSize)
		if err != nil || string(got) != "abc" {
			t.Fatalf("first frame = %q, %v", got, err)
		}
		got, err = ReadFrame(r, MaxRequestSize)
		if err != nil || len(got) != 0 {
			t.Fatalf("empty frame = %q, %v", got, err)
		}
		if _, err = ReadFrame(r, MaxRequestSize); err != io.EOF {
			t.Fatalf("at boundary: err = %v, want io.EOF", err)
		}
	})
	t.Run("fresh slice", func(t *testing.T) {
		src := sized(2, []byte("xy"))
		got, _ := ReadFrame(bytes.NewReader(src), MaxRequestSize)
		src[4] = 'z'
		if string(got) != "xy" {
			t.Fatalf("body aliases the reader's buffer: %q", got)
		}
	})
	for name, in := range map[string][]byte{
		"truncated size": {0, 0},
		"truncated body": sized(10, []byte("short")),
		"missing body":   sized(1, nil),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadFrame(bytes.NewReader(in), MaxRequestSize); err != io.ErrUnexpectedEOF {
				t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
	for name, size := range map[string]int32{"negative": -1, "oversized": 101, "min int": -1 << 31} {
		t.Run(name, func(t *testing.T) {
			// No body follows: the size alone must be rejected, unread.
			r := &countingReader{r: bytes.NewReader(sized(size, nil))}
			_, err := ReadFrame(r, 100)
			if !errors.Is(err, ErrFrameSize) {
				t.Fatalf("err = %v, want ErrFrameSize", err)
			}
			if r.n != 4 {
				t.Fatalf("read %d bytes, want only the 4-byte size", r.n)
			}
		})
	}
	t.Run("exact max", func(t *testing.T) {
		body := bytes.Repeat([]byte{7}, 100)
		got, err := ReadFrame(bytes.NewReader(sized(100, body)), 100)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("frame at max: %d bytes, %v", len(got), err)
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
