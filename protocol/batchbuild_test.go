package protocol

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testBatch describes a batch for tests; build encodes it the way a producer
// would, through kmsg.RecordBatch, with a correct CRC.
type testBatch struct {
	codec         int8
	xerial        bool // snappy in the Java client's framing
	attributes    int16
	baseTimestamp int64
	tsDeltas      []int64 // one record per entry
	producerID    int64
	baseSequence  int32
}

func newTestBatch(n int) testBatch {
	b := testBatch{baseTimestamp: 1_700_000_000_000, producerID: -1, baseSequence: -1}
	for i := 0; i < n; i++ {
		b.tsDeltas = append(b.tsDeltas, int64(i*10))
	}
	return b
}

func encodeRecord(r kmsg.Record) []byte {
	// kmsg writes Length as given: size the record, then encode it for real.
	r.Length = 0
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	return r.AppendTo(nil)
}

func (tb testBatch) build(t testing.TB) []byte {
	t.Helper()
	var raw []byte
	maxTS := tb.baseTimestamp
	for i, d := range tb.tsDeltas {
		raw = append(raw, encodeRecord(kmsg.Record{
			TimestampDelta64: d,
			OffsetDelta:      int32(i),
			Key:              []byte("key"),
			Value:            bytes.Repeat([]byte("value "), 20),
			Headers:          []kmsg.Header{{Key: "h", Value: []byte("v")}},
		})...)
		maxTS = max(maxTS, tb.baseTimestamp+d)
	}
	recs := compress(t, tb.codec, tb.xerial, raw)
	rb := kmsg.RecordBatch{
		Magic:           2,
		Attributes:      tb.attributes | int16(tb.codec),
		LastOffsetDelta: int32(len(tb.tsDeltas) - 1),
		FirstTimestamp:  tb.baseTimestamp,
		MaxTimestamp:    maxTS,
		ProducerID:      tb.producerID,
		ProducerEpoch:   -1,
		FirstSequence:   tb.baseSequence,
		NumRecords:      int32(len(tb.tsDeltas)),
		Records:         recs,
	}
	if tb.producerID >= 0 {
		rb.ProducerEpoch = 0
	}
	rb.Length = int32(BatchHeaderSize - logOverhead + len(recs))
	return fixCRC(rb.AppendTo(nil))
}

// fixCRC recomputes the CRC after a test edits a covered field.
func fixCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

func compress(t testing.TB, codec int8, xerial bool, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case CodecNone:
		return raw
	case CodecGzip:
		w := gzip.NewWriter(&buf)
		w.Write(raw)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CodecSnappy:
		if !xerial {
			return snappy.Encode(nil, raw)
		}
		// The Java framing, cut into small blocks to cover several.
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		for len(raw) > 0 {
			n := min(len(raw), 100)
			block := snappy.Encode(nil, raw[:n])
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(block))))
			buf.Write(block)
			raw = raw[n:]
		}
	case CodecLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(raw)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CodecZstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		return enc.EncodeAll(raw, nil)
	default:
		t.Fatalf("codec %d", codec)
	}
	return buf.Bytes()
}
