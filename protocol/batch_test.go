package protocol

import (
	"errors"
	"math"
	"testing"
)

func TestParseBatchHeader(t *testing.T) {
	tb := newTestBatch(3)
	tb.codec = CodecLZ4
	tb.attributes = attrTransactional
	tb.producerID, tb.baseSequence = 1234, 50
	b := tb.build(t)
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Magic != 2 || h.NumRecords != 3 || h.LastOffsetDelta != 2 || int(h.Length)+12 != len(b) ||
		h.ProducerID != 1234 || h.BaseSequence != 50 || h.BaseTimestamp != tb.baseTimestamp ||
		h.MaxTimestamp != tb.baseTimestamp+20 {
		t.Fatalf("header = %+v", h)
	}
	if h.Codec() != CodecLZ4 || !h.Transactional() || h.Control() || h.LogAppendTime() || h.LastSequence() != 52 {
		t.Fatalf("codec %d txn %v control %v lastSeq %d", h.Codec(), h.Transactional(), h.Control(), h.LastSequence())
	}
	if _, err := ParseBatchHeader(b[:60]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short header: %v", err)
	}
	b[offMagic] = 1
	if _, err := ParseBatchHeader(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("magic 1: %v", err)
	}
}

func TestLastSequence(t *testing.T) {
	for _, c := range []struct{ base, delta, want int32 }{
		{0, 0, 0},
		{10, 4, 14},
		{-1, 4, -1}, // no sequence
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 2, 5, 2},
	} {
		h := BatchHeader{BaseSequence: c.base, LastOffsetDelta: c.delta}
		if got := h.LastSequence(); got != c.want {
			t.Errorf("base %d + delta %d = %d, want %d", c.base, c.delta, got, c.want)
		}
	}
}

func TestSetFieldsOutsideCRC(t *testing.T) {
	b := newTestBatch(2).build(t)
	SetBaseOffset(b, 1<<40)
	SetPartitionLeaderEpoch(b, 7)
	h, bad := ValidateProduceBatch(b, math.MaxInt32)
	if bad != nil {
		t.Fatalf("rewritten batch invalid: %v", bad)
	}
	if h.BaseOffset != 1<<40 || h.PartitionLeaderEpoch != 7 {
		t.Fatalf("header = %+v", h)
	}
	SetBaseOffset(b[:10], 1) // too short: ignored, not a panic
	SetPartitionLeaderEpoch(nil, 1)
}
