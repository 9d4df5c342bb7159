package protocol

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestValidateProduceBatchAccepts(t *testing.T) {
	for codec := CodecNone; codec <= CodecZstd; codec++ {
		tb := newTestBatch(5)
		tb.codec = codec
		b := tb.build(t)
		h, bad := ValidateProduceBatch(b, int32(len(b)))
		if bad != nil {
			t.Fatalf("codec %d: %v", codec, bad)
		}
		if h.NumRecords != 5 || h.Codec() != codec {
			t.Fatalf("codec %d: header %+v", codec, h)
		}
	}
	idem := newTestBatch(1)
	idem.producerID, idem.baseSequence = 9, 0
	if _, bad := ValidateProduceBatch(idem.build(t), math.MaxInt32); bad != nil {
		t.Fatalf("idempotent batch: %v", bad)
	}
}

func TestValidateProduceBatchRejects(t *testing.T) {
	good := func() []byte { return newTestBatch(3).build(t) }
	with := func(edit func(b []byte) []byte) []byte { return edit(good()) }
	setLen := func(b []byte, n int32) []byte {
		binary.BigEndian.PutUint32(b[offLength:], uint32(n))
		return b
	}
	legacy := func(magic byte) []byte {
		// A v0/v1 message: offset, size, crc, magic, attributes, (ts), key, value.
		b := binary.BigEndian.AppendUint64(nil, 0)
		body := []byte{0, 0, 0, 0, magic, 0}
		if magic == 1 {
			body = append(body, 0, 0, 0, 0, 0, 0, 0, 0)
		}
		body = append(body, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 'v')
		b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
		return append(b, body...)
	}
	idem := newTestBatch(1)
	idem.producerID = 5 // and baseSequence -1

	cases := []struct {
		name    string
		records []byte
		max     int32
		want    *kerr.Error
	}{
		{"nil", nil, 0, kerr.InvalidRecord},
		{"shorter than log overhead", good()[:11], 0, kerr.InvalidRecord},
		{"length below record overhead", with(func(b []byte) []byte { return setLen(b, 13) }), 0, kerr.CorruptMessage},
		{"negative length", with(func(b []byte) []byte { return setLen(b, -1) }), 0, kerr.CorruptMessage},
		{"huge length", with(func(b []byte) []byte { return setLen(b, math.MaxInt32) }), 0, kerr.InvalidRecord},
		{"cut before magic", good()[:16], 0, kerr.InvalidRecord},
		{"magic out of range", with(func(b []byte) []byte { b[offMagic] = 3; return b }), 0, kerr.CorruptMessage},
		{"truncated batch", good()[:70], 0, kerr.InvalidRecord},
		{"magic 0", legacy(0), 0, kerr.InvalidRecord},
		{"magic 1", legacy(1), 0, kerr.InvalidRecord},
		{"two batches", append(good(), good()...), 0, kerr.InvalidRecord},
		{"trailing legacy message", append(good(), legacy(1)...), 0, kerr.InvalidRecord},
		{"trailing partial batch", append(good(), good()[:30]...), 0, kerr.CorruptMessage},
		{"trailing byte", append(good(), 0), 0, kerr.CorruptMessage},
		{"too large", good(), 100, kerr.MessageTooLarge},
		{"length shorter than header", with(func(b []byte) []byte { return setLen(b, 20)[:32] }), 0, kerr.CorruptMessage},
		{"crc mismatch", with(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 0, kerr.CorruptMessage},
		{"crc field wrong", with(func(b []byte) []byte { b[offCRC] ^= 1; return b }), 0, kerr.CorruptMessage},
		{"codec 5", with(func(b []byte) []byte { b[offAttributes+1] |= 5; return fixCRC(b) }), 0, kerr.CorruptMessage},
		{"zero records", with(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offNumRecords:], 0)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], math.MaxUint32) // -1
			return fixCRC(b)
		}), 0, kerr.InvalidRecord},
		{"negative count", with(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offNumRecords:], math.MaxUint32)
			return fixCRC(b)
		}), 0, kerr.InvalidRecord},
		{"count disagrees with lastOffsetDelta", with(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 3)
			return fixCRC(b)
		}), 0, kerr.InvalidRecord},
		{"lastOffsetDelta max int", with(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], math.MaxInt32)
			binary.BigEndian.PutUint32(b[offNumRecords:], math.MaxInt32)
			return fixCRC(b)
		}), 0, kerr.InvalidRecord},
		{"control batch", with(func(b []byte) []byte { b[offAttributes+1] |= attrControl; return fixCRC(b) }), 0, kerr.InvalidRecord},
		{"producer id without sequence", idem.build(t), 0, kerr.InvalidRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			max := c.max
			if max == 0 {
				max = math.MaxInt32
			}
			if _, got := ValidateProduceBatch(c.records, max); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}
