package raftactor

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/storage"
)

// keyCollector is an observer keeping the last value seen per key, what a
// group store rebuilds from __consumer_offsets.
type keyCollector map[string]string

func (k keyCollector) ObserveBatch(batch []byte) {
	recs, err := protocol.Records(batch)
	if err != nil {
		panic(err)
	}
	for _, r := range recs {
		k[string(r.Key)] = string(r.Value)
	}
}

// The partition state machine as the replica drives it for a compacted
// topic: after a synced checkpoint, Maintain rewrites the sealed segments;
// the log shrinks, and a reopen replays to the same latest value per key.
func TestPartitionCompactionReplay(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, filepath.Join(dir, "db"))
	defer db.Close()
	pdir := filepath.Join(dir, "c-0")
	cfg := PartitionConfig{
		Group: 9, Dir: pdir, DB: db,
		Log:        storage.LogOptions{SegmentBytes: 600},
		Compaction: &CompactionConfig{CheckEvery: time.Millisecond},
	}
	p, _, err := OpenPartition(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := keyCollector{}
	index := uint64(0)
	for i := range 60 {
		k, v := fmt.Sprintf("k%d", i%4), fmt.Sprintf("v%d", i)
		want[k] = v
		index++
		cmd := EncodeProduce(protocol.BuildBatch([]protocol.Record{{Key: []byte(k), Value: []byte(v)}}, time.Now().UnixMilli()))
		if r := applyAsLeader(t, p, index, 2, cmd, time.Now()).(*ProduceResult); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	p.Applied()
	before := p.View().SizeBytes()
	now := time.Now()
	for range 4 { // compaction waits for a synced checkpoint
		now = now.Add(time.Second)
		if err := p.Maintain(now); err != nil {
			t.Fatal(err)
		}
		if cp := p.Checkpoint(index); cp != nil {
			commitCheckpoint(t, db, cp)
		}
	}
	after := p.View()
	if after.SizeBytes() >= before {
		t.Fatalf("log of %d bytes after compaction, was %d: nothing compacted", after.SizeBytes(), before)
	}
	if after.HighWatermark() != 60 || after.LogStartOffset() != 0 {
		t.Fatalf("offsets moved: start %d, high watermark %d", after.LogStartOffset(), after.HighWatermark())
	}
	if err := p.Close(false); err != nil {
		t.Fatal(err)
	}

	got := keyCollector{}
	cfg.Observer = got
	p2, _, err := OpenPartition(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(false)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replay after compaction: %v, want %v", got, want)
	}
}
