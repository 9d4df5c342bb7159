package protocol

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The fuzz targets assert only that hostile input never panics; run them
// with e.g. go test -run=^$ -fuzz=FuzzValidateProduceBatch -fuzztime=30s.

func FuzzValidateProduceBatch(f *testing.F) {
	for codec := CodecNone; codec <= CodecZstd; codec++ {
		tb := newTestBatch(3)
		tb.codec = codec
		f.Add(tb.build(f), int32(math.MaxInt32))
	}
	f.Add([]byte{}, int32(1))
	f.Add(newTestBatch(1).build(f)[:20], int32(-1))
	f.Fuzz(func(t *testing.T, records []byte, max int32) {
		h, bad := ValidateProduceBatch(records, max)
		if bad == nil {
			// Whatever passes validation must be readable downstream.
			RecordTimestamps(records)
			_ = h.LastSequence()
		}
		RecordTimestamps(records)
	})
}

func FuzzParseRequest(f *testing.F) {
	for _, req := range []kmsg.Request{metadataV12(), produceV7(), apiVersionsV3()} {
		f.Add(frameOf(req, 1, "fuzz"))
	}
	for _, row := range apiTable {
		for _, v := range []int16{row.Min, row.Max} {
			req := row.key.Request()
			req.SetVersion(v)
			f.Add(frameOf(req, 2, ""))
		}
	}
	f.Add(header(18, 9, 3, nil, []byte{5}))
	f.Fuzz(func(t *testing.T, frame []byte) {
		hdr, req, err := ParseRequest(frame)
		if err == nil && req == nil {
			t.Fatalf("nil request without error for %+v", hdr)
		}
	})
}
