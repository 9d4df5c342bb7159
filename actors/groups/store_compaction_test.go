package groups

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/storage"
)

// A compacted __consumer_offsets log loads the same groups as the log it
// was compacted from: committed offsets, and pending ones of open
// transactions. Random interleavings of plain commits, tombstones,
// transactions' commits and their markers, compacted now and then, are
// replayed into a fresh store and compared with the store that saw every
// batch as it was written.
func TestCompactedLogLoadsSameOffsets(t *testing.T) {
	for seed := int64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { compactionEquivalence(t, seed) })
	}
}

func compactionEquivalence(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	l, err := storage.OpenPartitionLog(t.TempDir(), storage.LogOptions{SegmentBytes: 300, IndexIntervalBytes: 100}, storage.LogPosition{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	live := newGroupStore()
	open := map[int64]bool{}
	write := func(b []byte) {
		protocol.SetBaseOffset(b, l.NextOffset())
		if err := l.Append(b); err != nil {
			t.Fatal(err)
		}
		l.Publish()
		live.ObserveBatch(b)
	}
	rec := func() protocol.Record {
		g, p := fmt.Sprint("g", rng.Intn(2)), int32(rng.Intn(3))
		if rng.Intn(8) == 0 {
			return offsetTombstone(g, "t", p)
		}
		return offsetCommitRecord(g, "t", p, Offset{Offset: rng.Int63n(1000), LeaderEpoch: -1, CommitTimestamp: 1})
	}
	for step := range 200 {
		pid := int64(1 + rng.Intn(3))
		switch r := rng.Intn(10); {
		case r < 3:
			write(protocol.BuildBatch([]protocol.Record{rec(), rec()}, 1))
		case r < 6:
			var recs []protocol.Record
			for range 1 + rng.Intn(2) {
				if r := rec(); r.Value != nil { // transactions commit, never delete
					recs = append(recs, r)
				}
			}
			if len(recs) > 0 {
				write(protocol.BuildTransactionalBatch(pid, 0, recs, 1))
				open[pid] = true
			}
		case r < 9:
			write(protocol.BuildControlBatch(pid, 0, rng.Intn(3) > 0, 0, 1))
			delete(open, pid)
		default:
			if err := l.PrepareSync().Run(); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Compact(l.Position().SegmentBase, 0); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
	}
	if err := l.PrepareSync().Run(); err != nil {
		t.Fatal(err)
	}
	res, err := l.Compact(l.Position().SegmentBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	loaded := newGroupStore()
	v := l.View()
	for off := v.LogStartOffset(); off < v.HighWatermark(); {
		data, err := v.Read(off, 1<<20)
		if err != nil || len(data) == 0 {
			t.Fatalf("read at %d: %d bytes, %v", off, len(data), err)
		}
		for len(data) >= protocol.BatchHeaderSize {
			h, err := protocol.ParseBatchHeader(data)
			if err != nil {
				t.Fatal(err)
			}
			n := int(h.Length) + 12
			loaded.ObserveBatch(data[:n])
			data = data[n:]
			off = h.BaseOffset + int64(h.LastOffsetDelta) + 1
		}
	}
	if loaded.skipped != 0 {
		t.Fatalf("the compacted log has %d unreadable records", loaded.skipped)
	}
	if got, want := dumpStore(loaded), dumpStore(live); !reflect.DeepEqual(got, want) {
		t.Fatalf("compacted log (last compaction %+v) loads\n%v\nwant\n%v", res, got, want)
	}
}

// dumpStore is a store's offsets, committed and pending, as plain maps.
func dumpStore(s *groupStore) map[string]string {
	out := map[string]string{}
	for name, g := range s.groups {
		for tp, ps := range g.offsets {
			for p, o := range ps {
				out[fmt.Sprintf("%s/%s-%d", name, tp, p)] = fmt.Sprintf("%d@%d", o.Offset.Offset, o.at)
			}
		}
		for pid, offs := range g.pending {
			for tp, ps := range offs {
				for p, o := range ps {
					out[fmt.Sprintf("%s/%s-%d pending %d", name, tp, p, pid)] = fmt.Sprintf("%d@%d", o.Offset.Offset, o.at)
				}
			}
		}
	}
	return out
}
