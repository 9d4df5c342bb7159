package protocol

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// maxDecompressed bounds the decompressed records of one batch. Produce does
// not decompress (see ValidateProduceBatch), so a stored batch may be a
// compression bomb; this keeps reading it from exhausting memory.
const maxDecompressed = 256 << 20

var errTooLarge = fmt.Errorf("decompressed records exceed %d bytes: %w", maxDecompressed, ErrMalformed)

// xerialMagic opens snappy data in the Java client's framing (from the
// xerial snappy-java library): magic, then version and compatible-version
// int32s, then blocks each prefixed by a big-endian int32 length.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// zstdDecoder is shared: DecodeAll is safe for concurrent use, and a decoder
// is costly to build.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(maxDecompressed))
})

// decompress returns the records section of a batch in plain form.
func decompress(codec int8, src []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		return src, nil
	case CodecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("gzip: %v: %w", err, ErrMalformed)
		}
		return readAllLimited(zr, "gzip")
	case CodecSnappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return decodeXerial(src)
		}
		return decodeSnappyBlock(nil, src)
	case CodecLZ4:
		// Kafka's magic-2 batches use the standard LZ4 frame format.
		return readAllLimited(lz4.NewReader(bytes.NewReader(src)), "lz4")
	case CodecZstd:
		dec, err := zstdDecoder()
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		out, err := dec.DecodeAll(src, nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %v: %w", err, ErrMalformed)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unknown codec %d: %w", codec, ErrMalformed)
	}
}

func readAllLimited(r io.Reader, codec string) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, maxDecompressed+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", codec, err, ErrMalformed)
	}
	if len(out) > maxDecompressed {
		return nil, errTooLarge
	}
	return out, nil
}

// decodeSnappyBlock appends one raw snappy block to dst, refusing blocks
// whose declared length would overrun the limit before allocating for it.
func decodeSnappyBlock(dst, block []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("snappy: %v: %w", err, ErrMalformed)
	}
	if len(dst)+n > maxDecompressed {
		return nil, errTooLarge
	}
	out, err := snappy.Decode(nil, block)
	if err != nil {
		return nil, fmt.Errorf("snappy: %v: %w", err, ErrMalformed)
	}
	return append(dst, out...), nil
}

func decodeXerial(src []byte) ([]byte, error) {
	if len(src) < xerialHeaderSize {
		return nil, fmt.Errorf("snappy: short xerial header: %w", ErrMalformed)
	}
	src = src[xerialHeaderSize:]
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, fmt.Errorf("snappy: short xerial block length: %w", ErrMalformed)
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, fmt.Errorf("snappy: xerial block of %d bytes, %d left: %w", n, len(src), ErrMalformed)
		}
		var err error
		if out, err = decodeSnappyBlock(out, src[:n]); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return out, nil
}
