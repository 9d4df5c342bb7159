package raftactor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/protocol"
)

func TestEndOffsetForEpoch(t *testing.T) {
	hist := []EpochStart{{Epoch: 2, StartOffset: 0}, {Epoch: 4, StartOffset: 10}, {Epoch: 7, StartOffset: 25}}
	const end = 40
	for _, c := range []struct {
		name      string
		epochs    []EpochStart
		epoch     int32
		current   int32
		wantEpoch int32
		wantEnd   int64
	}{
		{"latest epoch: log end offset", hist, 7, 7, 7, end},
		{"beyond the current epoch: undefined", hist, 8, 7, -1, -1},
		{"led after the last write: log end offset", hist, 8, 9, 8, end},
		{"current epoch, nothing written in it: log end offset", hist, 9, 9, 9, end},
		{"empty history: log end offset", nil, 3, 3, 3, end},
		{"empty history, older epoch: log end offset", nil, 0, 3, 0, end},
		{"empty history, beyond current: undefined", nil, 4, 3, -1, -1},
		{"known older epoch: start of the next", hist, 4, 7, 4, 25},
		{"gap between epochs: largest below, start of the next", hist, 5, 7, 4, 25},
		{"first epoch", hist, 2, 7, 2, 10},
		{"gap after the first", hist, 3, 7, 2, 10},
		{"before the first: requested epoch, first start", hist, 1, 7, 1, 0},
		{"epoch 0 before the first", hist, 0, 7, 0, 0},
		{"UNDEFINED_EPOCH (-1): undefined, as Kafka", hist, -1, 7, -1, -1},
		{"single epoch: latest", hist[2:], 7, 7, 7, end},
		{"single epoch: before", hist[2:], 6, 7, 6, 25},
		{"single epoch: after", hist[2:], 9, 7, -1, -1},
	} {
		e, off := EndOffsetForEpoch(c.epochs, c.epoch, c.current, end)
		if e != c.wantEpoch || off != c.wantEnd {
			t.Errorf("%s: EndOffsetForEpoch(%d, current %d) = (%d, %d), want (%d, %d)", c.name, c.epoch, c.current, e, off, c.wantEpoch, c.wantEnd)
		}
	}
}

// Partition.Apply called directly, as the replica does: offsets, rewritten
// header fields, duplicates, epochs, and refused commands.
func TestPartitionApply(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, filepath.Join(dir, "db"))
	defer db.Close()
	p, applied, err := OpenPartition(PartitionConfig{Group: 3, Dir: filepath.Join(dir, "t-0"), DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(false)
	if applied != 0 {
		t.Fatalf("fresh partition applied %d, want 0", applied)
	}

	apply := func(index, term uint64, batch []byte) *ProduceResult {
		t.Helper()
		v := applyAsLeader(t, p, index, term, EncodeProduce(batch), time.Now())
		r, ok := v.(*ProduceResult)
		if !ok {
			t.Fatalf("Apply returned %T %v", v, v)
		}
		return r
	}

	b1 := idempotentBatch("a", 3, 11, 0, 0)
	if r := apply(2, 2, b1); r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("first batch: %+v", r)
	}
	if r := apply(3, 2, testBatch("plain", 2)); r.Err != nil || r.BaseOffset != 3 {
		t.Fatalf("plain batch: %+v", r)
	}
	// The retried idempotent batch is answered with its first offset and
	// not written again.
	if r := apply(4, 2, b1); r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("duplicate: %+v", r)
	}
	if r := apply(5, 4, idempotentBatch("a", 1, 11, 0, 5)); r.Err != kerr.OutOfOrderSequenceNumber {
		t.Fatalf("gap: %+v, want OUT_OF_ORDER_SEQUENCE_NUMBER", r)
	}
	if r := apply(6, 4, idempotentBatch("b", 1, 11, 0, 3)); r.Err != nil || r.BaseOffset != 5 {
		t.Fatalf("next in sequence, new term: %+v", r)
	}
	unknown := make([]byte, protocol.BatchHeaderSize+10)
	unknown[16] = 9 // magic 9: not a record batch
	if r := apply(7, 4, unknown); r.Err != kerr.InvalidRequest {
		t.Fatalf("unknown command: %+v", r)
	}
	if r := apply(8, 4, []byte{2, 1, 2}); r.Err != kerr.CorruptMessage {
		t.Fatalf("short batch: %+v", r)
	}
	if p.View().HighWatermark() != 0 {
		t.Fatal("data visible before Applied published it")
	}
	p.Applied()
	v := p.View()
	if v.HighWatermark() != 6 {
		t.Fatalf("high watermark %d, want 6", v.HighWatermark())
	}
	if got := p.Epochs(); len(got) != 2 || got[0] != (EpochStart{2, 0}) || got[1] != (EpochStart{4, 5}) {
		t.Fatalf("epochs %v, want [{2 0} {4 5}]", got)
	}
	data, err := v.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	var epochs []int32
	for len(data) > 0 {
		h, err := protocol.ParseBatchHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, h.BaseOffset)
		epochs = append(epochs, h.PartitionLeaderEpoch)
		data = data[h.Length+12:]
	}
	if len(bases) != 3 || bases[0] != 0 || bases[1] != 3 || bases[2] != 5 || epochs[0] != 2 || epochs[1] != 2 || epochs[2] != 4 {
		t.Fatalf("stored batches at %v with epochs %v, want [0 3 5] [2 2 4]", bases, epochs)
	}
}
