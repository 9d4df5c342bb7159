package protocol

import "testing"

func TestControlBatchRoundTrip(t *testing.T) {
	for _, commit := range []bool{true, false} {
		b := BuildControlBatch(7, 3, commit, 11, 1000)
		h, err := ParseBatchHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Control() || !h.Transactional() || h.ProducerID != 7 || h.ProducerEpoch != 3 || h.BaseSequence != -1 {
			t.Fatalf("header %+v", h)
		}
		got, ce, err := ControlMarker(b)
		if err != nil || got != commit || ce != 11 {
			t.Fatalf("ControlMarker = %v %d %v, want %v 11", got, ce, err, commit)
		}
	}
	if _, _, err := ControlMarker(BuildTransactionalBatch(7, 3, []Record{{Key: []byte("k")}}, 1)); err != ErrNotControl {
		t.Fatalf("a data batch read as a marker: %v", err)
	}
}
