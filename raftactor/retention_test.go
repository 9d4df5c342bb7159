package raftactor

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/storage"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// bigBatch is one record of about 500 bytes, timestamped ts.
func bigBatch(ts int64) []byte {
	return protocol.BuildBatch([]protocol.Record{{Value: []byte(strings.Repeat("v", 500))}}, ts)
}

func segmentLogs(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The partition state machine as the replica drives it: Maintain deletes,
// the next checkpoint records the new start and asks for a synced save,
// Saved removes the files, and a reopen starts where retention left off.
func TestPartitionRetention(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, filepath.Join(dir, "db"))
	defer db.Close()
	pdir := filepath.Join(dir, "t-0")
	cfg := PartitionConfig{
		Group: 5, Dir: pdir, DB: db,
		Log:       storage.LogOptions{SegmentBytes: 1200}, // two batches a segment
		Retention: &RetentionConfig{Ms: -1, Bytes: 2500, CheckEvery: time.Hour},
	}
	p, _, err := OpenPartition(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := p.Maintain(now); err != nil { // the first check; nothing to do
		t.Fatal(err)
	}
	index := uint64(0)
	for range 12 {
		index++
		cmd := EncodeProduce(bigBatch(now.UnixMilli()))
		if r := applyAsLeader(t, p, index, 2, cmd, time.Now()).(*ProduceResult); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	p.Applied()
	if n := len(segmentLogs(t, pdir)); n != 6 {
		t.Fatalf("%d segments, want 6", n)
	}
	// Not an hour later, but segments rolled: the size limit is checked.
	if err := p.Maintain(now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	v := p.View()
	// 6 segments of ~1100 bytes: deleting while what is left stays >= 2500
	// leaves three.
	if v.LogStartOffset() != 6 || v.HighWatermark() != 12 {
		t.Fatalf("after retention: start %d, high watermark %d; want 6, 12", v.LogStartOffset(), v.HighWatermark())
	}
	if n := len(segmentLogs(t, pdir)); n != 6 {
		t.Fatalf("%d segment files before the checkpoint, want all 6", n)
	}

	cp := p.Checkpoint(index)
	sc, ok := cp.(SyncedCheckpoint)
	if !ok || !sc.MustSync() {
		t.Fatalf("checkpoint after retention: %T, want a synced one", cp)
	}
	commitCheckpoint(t, db, cp)
	if n := len(segmentLogs(t, pdir)); n != 3 {
		t.Fatalf("%d segment files after the checkpoint, want 3", n)
	}
	raw, err := db.Get(storage.GroupMetaKey(5, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	var rec partitionCheckpoint
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Position.LogStartOffset != 6 || rec.Position.NextOffset != 12 {
		t.Fatalf("checkpoint position %+v", rec.Position)
	}
	if cp := p.Checkpoint(index); cp != nil {
		t.Fatal("a checkpoint with nothing new")
	}
	// Time retention waits for CheckEvery when nothing rolled.
	if err := p.Maintain(now.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if p.View().LogStartOffset() != 6 {
		t.Fatal("retention ran before it was due")
	}
	if err := p.Close(false); err != nil {
		t.Fatal(err)
	}

	// Reopened: same start, same end; the replica resumes after index.
	p, applied, err := OpenPartition(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(false)
	if v := p.View(); v.LogStartOffset() != 6 || v.HighWatermark() != 12 || applied != index {
		t.Fatalf("reopened: start %d, high watermark %d, applied %d", v.LogStartOffset(), v.HighWatermark(), applied)
	}
}

// Through the replica: ticks run retention, the checkpoint timer saves it
// and the files go; a partition without retention keeps everything.
func TestReplicaRetention(t *testing.T) {
	for _, retain := range []bool{true, false} {
		dir := t.TempDir()
		db := openDB(t, filepath.Join(dir, "db"))
		pdir := filepath.Join(dir, "t-0")
		cfg := PartitionConfig{Group: 9, Dir: pdir, DB: db, Log: storage.LogOptions{SegmentBytes: 1200}}
		if retain {
			// Every record is far older than a minute: all sealed segments go.
			cfg.Retention = &RetentionConfig{Ms: 60_000, Bytes: -1, CheckEvery: time.Millisecond}
		}
		sm, applied, err := OpenPartition(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewReplica(Config{
			Group: 9, NodeID: 1, Voters: []uint64{1}, DB: db, SM: sm, Applied: applied,
			Log: quietLogger(), CheckpointEvery: time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		sys := newSystem()
		rpid, results := spawnCollector(sys, nil)
		pid := sys.Root.Spawn(r.Props())
		for i := range 9 {
			sys.Root.Send(pid, &Propose{Data: EncodeProduce(bigBatch(1700000000000)), ReplyTo: rpid, Token: i})
		}
		for _, res := range waitResults(t, results, 9) {
			produceResult(t, res)
		}
		if retain {
			wait.For(t, 10*time.Second, func() error {
				sys.Root.Send(pid, &Tick{})
				if start, files := sm.View().LogStartOffset(), len(segmentLogs(t, pdir)); start != 8 || files != 1 {
					return fmt.Errorf("retention not done yet: log start %d, %d segment files; want 8 and 1", start, files)
				}
				return nil
			})
		} else {
			for range 20 {
				sys.Root.Send(pid, &Tick{})
			}
			// Deliberately let time pass: nothing may be removed, and no
			// condition says "retention has decided not to act".
			time.Sleep(50 * time.Millisecond)
			if v := sm.View(); v.LogStartOffset() != 0 || len(segmentLogs(t, pdir)) != 5 {
				t.Fatalf("no retention: start %d, %d files", v.LogStartOffset(), len(segmentLogs(t, pdir)))
			}
		}
		if err := sys.Root.StopFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
		sys.Shutdown()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
