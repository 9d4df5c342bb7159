package groups

import (
	"reflect"
	"testing"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// storeLog feeds batches to a store as a partition does: each gets the
// next offsets, so record offsets (which decide between a plain and a
// transactional commit) are those of a real log.
type storeLog struct {
	s       *groupStore
	next    int64
	batches [][]byte
}

func (l *storeLog) add(b []byte) {
	protocol.SetBaseOffset(b, l.next)
	h, _ := protocol.ParseBatchHeader(b)
	l.next += int64(h.LastOffsetDelta) + 1
	l.batches = append(l.batches, b)
	l.s.ObserveBatch(b)
}

func (l *storeLog) txn(pid int64, recs ...protocol.Record) {
	l.add(protocol.BuildTransactionalBatch(pid, 0, recs, 1))
}

func (l *storeLog) plain(recs ...protocol.Record) { l.add(protocol.BuildBatch(recs, 1)) }

func (l *storeLog) marker(pid int64, commit bool) {
	l.add(protocol.BuildControlBatch(pid, 0, commit, 0, 1))
}

// One marker ends the producer's offsets in every group of the partition;
// a replay of the same log builds the same state, pending offsets included.
func TestGroupStoreTxnMarkerEndsEveryGroup(t *testing.T) {
	l := &storeLog{s: newGroupStore()}
	l.txn(7, offsetCommitRecord("a", "t", 0, Offset{Offset: 1}), offsetCommitRecord("b", "t", 0, Offset{Offset: 2}))
	l.txn(8, offsetCommitRecord("a", "t", 1, Offset{Offset: 3}))
	l.plain(offsetTombstone("b", "t", 0)) // drops b's pending offset
	l.txn(7, offsetCommitRecord("a", "u", 0, Offset{Offset: 4}))
	l.marker(7, true)
	s := l.s
	offsetIs(t, s, "a", "t", 0, 1)
	offsetIs(t, s, "a", "u", 0, 4)
	offsetIs(t, s, "b", "t", 0, -1)
	offsetIs(t, s, "a", "t", 1, -1)
	if s.has("b") {
		t.Fatal("group b has nothing left but is still there")
	}
	if !s.hasPending("a", "t", 1) {
		t.Fatal("producer 8's offset is no longer pending")
	}
	replayed := newGroupStore()
	for _, b := range l.batches {
		replayed.ObserveBatch(b)
	}
	if !reflect.DeepEqual(replayed.groups, s.groups) || !reflect.DeepEqual(replayed.txns, s.txns) {
		t.Fatalf("replay differs:\n%+v\n%+v", replayed.groups, s.groups)
	}
	// Group metadata in a transactional batch is not an offset: it applies
	// at once (the coordinator never writes one, but the log decides).
	l.txn(9, groupTombstone("a"))
	l.marker(8, false)
	offsetIs(t, s, "a", "t", 1, -1)
	if s.skipped != 0 {
		t.Fatalf("skipped %d", s.skipped)
	}
	// A control batch that is no marker is skipped, not applied.
	bad := protocol.BuildControlBatch(7, 0, true, 0, 1)
	s.ObserveBatch(bad[:len(bad)-3])
	if s.skipped != 1 {
		t.Fatalf("a truncated marker: skipped %d, want 1", s.skipped)
	}
}
