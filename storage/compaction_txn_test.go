package storage

import (
	"testing"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// txnTestLog appends one batch per segment, so which batch sits where is
// plain, and records what each offset held.
type txnTestLog struct {
	t  *testing.T
	tl *testLog
}

func (x *txnTestLog) add(b []byte) int64 {
	x.t.Helper()
	base := x.tl.l.NextOffset()
	protocol.SetBaseOffset(b, base)
	if err := x.tl.l.Append(b); err != nil {
		x.t.Fatal(err)
	}
	x.tl.batches = append(x.tl.batches, b)
	return base
}

func (x *txnTestLog) plain(key, value string) int64 {
	return x.add(protocol.BuildBatch([]protocol.Record{{Key: []byte(key), Value: []byte(value)}}, 1))
}

func (x *txnTestLog) txn(pid int64, key, value string) int64 {
	return x.add(protocol.BuildTransactionalBatch(pid, 0, []protocol.Record{{Key: []byte(key), Value: []byte(value)}}, 1))
}

func (x *txnTestLog) marker(pid int64, commit bool) int64 {
	return x.add(protocol.BuildControlBatch(pid, 0, commit, 0, 1))
}

// Compaction with transactions: a record of an aborted or open
// transaction never supersedes a committed value; aborted records go;
// a committed transaction's records supersede and are superseded by
// offset; a commit marker goes with the last record of its transaction,
// an abort marker stays.
func TestCompactionTransactions(t *testing.T) {
	dir := t.TempDir()
	x := &txnTestLog{t: t, tl: openTestLog(t, dir, LogOptions{SegmentBytes: 1}, LogPosition{})}
	defer func() { x.tl.l.Close() }()
	x.plain("a", "a0")           // 0: superseded by the committed a1
	x.txn(1, "a", "a1")          // 1
	x.plain("b", "b0")           // 2: stays, b1 aborts
	x.txn(2, "b", "b1")          // 3: aborted: removed
	commit1 := x.marker(1, true) // 4: a1 stays, so does its marker
	abort2 := x.marker(2, false) // 5: kept for good
	x.txn(4, "d", "d1")          // 6: superseded by d2
	x.plain("d", "d2")           // 7
	commit4 := x.marker(4, true) // 8: nothing left of its transaction
	x.plain("c", "c0")           // 9: superseded by c2
	x.txn(3, "c", "c1")          // 10: open: nothing from here on is compacted
	x.plain("c", "c2")           // 11
	x.plain("e", "e0")           // 12: superseded by e1 once it commits
	x.txn(5, "e", "e1")          // 13
	x.plain("z", "z")            // 14
	x.tl.l.Publish()
	if err := x.tl.l.PrepareSync().Run(); err != nil {
		t.Fatal(err)
	}
	commit5 := x.marker(5, true) // 15: appended, not published: ends nothing yet
	pos := x.tl.l.Position()
	res, err := x.tl.l.Compact(pos.SegmentBase, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Superseded != 3 || res.Aborted != 1 || res.Markers != 1 || res.Removed != 5 {
		t.Fatalf("result %+v: want 3 superseded (a0, d1, c0), 1 aborted (b1), 1 marker (offset %d), 5 removed", res, commit4)
	}
	v := x.tl.l.View()
	var got []string
	var markers []int64
	for _, b := range batchesOf(t, v) {
		h, _ := protocol.ParseBatchHeader(b)
		if h.Control() {
			if h.NumRecords != 1 {
				t.Fatalf("control batch at %d with %d records", h.BaseOffset, h.NumRecords)
			}
			markers = append(markers, h.BaseOffset)
			continue
		}
		recs, err := protocol.Records(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 && h.ProducerID != x.header(recs[0].Offset).ProducerID {
			t.Fatalf("batch at %d lost its producer id", h.BaseOffset)
		}
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	want := []string{"a1", "b0", "d2", "c1", "c2", "e0", "e1", "z"}
	if len(got) != len(want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("records %v, want %v", got, want)
		}
	}
	if len(markers) != 2 || markers[0] != commit1 || markers[1] != abort2 {
		t.Fatalf("markers at %v, want %d and %d (and the unpublished one not yet read)", markers, commit1, abort2)
	}
	for off := int64(0); off < v.HighWatermark(); off++ {
		if b, err := v.Read(off, 1); err != nil || len(b) == 0 {
			t.Fatalf("Read(%d): %d bytes, %v", off, len(b), err)
		}
	}
	// Once producer 3's transaction aborts and 5's commit is published,
	// the rest is compacted: c1 goes, and e1 (committed, later than e0)
	// supersedes e0; 5's marker stays with e1.
	x.marker(3, false)
	x.plain("y", "y")
	x.tl.l.Publish()
	if err := x.tl.l.PrepareSync().Run(); err != nil {
		t.Fatal(err)
	}
	res, err = x.tl.l.Compact(x.tl.l.Position().SegmentBase, 0)
	if err != nil || res.Superseded != 1 || res.Aborted != 1 || res.Markers != 0 || res.Removed != 2 {
		t.Fatalf("second compaction: %+v, %v; want c1 and e0 removed, marker %d kept", res, err, commit5)
	}
}

func (x *txnTestLog) header(off int64) protocol.BatchHeader {
	_, b := x.tl.batchFor(off)
	h, _ := protocol.ParseBatchHeader(b)
	return h
}

// A segment whose only dropped batch is a commit marker gets an empty
// batch in its place that is not a control batch.
func TestCompactionDroppedMarkerFiller(t *testing.T) {
	x := &txnTestLog{t: t, tl: openTestLog(t, t.TempDir(), LogOptions{SegmentBytes: 1}, LogPosition{})}
	defer func() { x.tl.l.Close() }()
	x.marker(9, true) // 0: a marker with no transaction here
	x.plain("z", "z")
	x.tl.l.Publish()
	if err := x.tl.l.PrepareSync().Run(); err != nil {
		t.Fatal(err)
	}
	res, err := x.tl.l.Compact(x.tl.l.Position().SegmentBase, 0)
	if err != nil || res.Markers != 1 || res.Segments != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	bs := batchesOf(t, x.tl.l.View())
	h, _ := protocol.ParseBatchHeader(bs[0])
	if len(bs) != 2 || h.Control() || h.Transactional() || h.NumRecords != 0 || h.BaseOffset != 0 || h.LastOffsetDelta != 0 {
		t.Fatalf("first batch %+v of %d, want an empty batch over offset 0, neither control nor transactional", h, len(bs))
	}
}
