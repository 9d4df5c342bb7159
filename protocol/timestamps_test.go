package protocol

import (
	"errors"
	"testing"
)

func TestRecordTimestampsAllCodecs(t *testing.T) {
	cases := []struct {
		name   string
		codec  int8
		xerial bool
	}{
		{"none", CodecNone, false},
		{"gzip", CodecGzip, false},
		{"snappy raw", CodecSnappy, false},
		{"snappy xerial", CodecSnappy, true},
		{"lz4", CodecLZ4, false},
		{"zstd", CodecZstd, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestBatch(4)
			tb.tsDeltas = []int64{0, 5, -3, 1000} // deltas need not be monotonic
			tb.codec, tb.xerial = c.codec, c.xerial
			b := tb.build(t)
			SetBaseOffset(b, 100)
			offsets, timestamps, err := RecordTimestamps(b)
			if err != nil {
				t.Fatal(err)
			}
			wantOff := []int64{100, 101, 102, 103}
			for i := range wantOff {
				if offsets[i] != wantOff[i] || timestamps[i] != tb.baseTimestamp+tb.tsDeltas[i] {
					t.Fatalf("record %d: offset %d ts %d", i, offsets[i], timestamps[i])
				}
			}
			if len(offsets) != 4 || len(timestamps) != 4 {
				t.Fatalf("%d offsets, %d timestamps", len(offsets), len(timestamps))
			}
		})
	}
}

func TestRecordTimestampsLogAppendTime(t *testing.T) {
	tb := newTestBatch(3)
	tb.attributes = attrLogAppendTime
	tb.codec = CodecZstd
	b := tb.build(t)
	h, _ := ParseBatchHeader(b)
	_, timestamps, err := RecordTimestamps(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, ts := range timestamps {
		if ts != h.MaxTimestamp {
			t.Fatalf("record %d: ts %d, want MaxTimestamp %d", i, ts, h.MaxTimestamp)
		}
	}
}

func TestRecordTimestampsBadInput(t *testing.T) {
	good := func(codec int8) []byte {
		tb := newTestBatch(2)
		tb.codec = codec
		return tb.build(t)
	}
	cases := map[string][]byte{
		"nil":              nil,
		"short":            good(CodecNone)[:40],
		"truncated":        good(CodecNone)[:80],
		"bad gzip":         corruptBody(good(CodecGzip)),
		"bad snappy":       corruptBody(good(CodecSnappy)),
		"bad lz4":          corruptBody(good(CodecLZ4)),
		"bad zstd":         corruptBody(good(CodecZstd)),
		"too many records": func() []byte { b := good(CodecNone); b[offNumRecords+3] = 3; return b }(),
		"codec 6":          func() []byte { b := good(CodecNone); b[offAttributes+1] |= 6; return b }(),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := RecordTimestamps(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

// corruptBody overwrites the start of the compressed records, where every
// format keeps its magic or header.
func corruptBody(b []byte) []byte {
	for i := BatchHeaderSize; i < BatchHeaderSize+8 && i < len(b); i++ {
		b[i] = 0xA5
	}
	return b
}

func TestRecordTimestampsDecompressionLimit(t *testing.T) {
	tb := newTestBatch(1)
	tb.codec = CodecSnappy
	b := tb.build(t)
	// A raw snappy block starts with its decoded length as a uvarint: claim
	// far more than the limit and the block is refused before allocating.
	bomb := append(b[:BatchHeaderSize:BatchHeaderSize], 0x80, 0x80, 0x80, 0x80, 0x0f)
	SetBaseOffset(bomb, 0)
	bomb[offLength+3] = byte(len(bomb) - logOverhead)
	if _, _, err := RecordTimestamps(bomb); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}
