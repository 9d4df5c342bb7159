package protocol

import (
	"bytes"
	"testing"
)

func TestBuildBatchRoundTrip(t *testing.T) {
	recs := []Record{{Key: []byte("k1"), Value: []byte("v1")}, {Key: []byte("k2"), Value: nil}, {Key: nil, Value: []byte{}}}
	b := BuildBatch(recs, 1234)
	h, kerrv := ValidateProduceBatch(b, 1<<20)
	if kerrv != nil {
		t.Fatalf("a built batch does not validate: %v", kerrv)
	}
	if h.NumRecords != 3 || h.MaxTimestamp != 1234 || h.ProducerID != -1 {
		t.Fatalf("header %+v", h)
	}
	SetBaseOffset(b, 40)
	got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d records", len(got))
	}
	for i, r := range got {
		if r.Offset != int64(40+i) || !bytes.Equal(r.Key, recs[i].Key) || !bytes.Equal(r.Value, recs[i].Value) || (r.Value == nil) != (recs[i].Value == nil) || (r.Key == nil) != (recs[i].Key == nil) {
			t.Fatalf("record %d: %+v, want %+v", i, r, recs[i])
		}
	}
}
