package storage

import (
	"bytes"
	"testing"
)

// endOf is the offset after the first n batches of tl.
func (tl *testLog) endOf(n int) int64 {
	h, _ := parseBatchHeader(tl.batches[n-1])
	return h.lastOffset + 1
}

// Batches appended after the last publish stay invisible until
// PublishThrough reaches them, and unpublished ones can be cut, across
// segment rolls, and written anew.
func TestPublishThroughAndTruncate(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, smallSegments, LogPosition{})
	tl.fill(10)
	tl.l.Publish()
	tl.fill(40) // several rolls
	if n := len(segmentFiles(t, dir, ".log")); n < 5 {
		t.Fatalf("%d segments, want rolls past the published end", n)
	}
	v := tl.l.View()
	if v.HighWatermark() != tl.endOf(10) || !bytes.Equal(readAll(t, v, 1<<20), bytes.Join(tl.batches[:10], nil)) {
		t.Fatalf("unpublished batches visible: high watermark %d, want %d", v.HighWatermark(), tl.endOf(10))
	}
	if err := tl.l.PublishThrough(tl.endOf(20) + 1); err == nil {
		t.Fatal("published through an offset inside a batch")
	}
	if err := tl.l.PublishThrough(tl.endOf(20)); err != nil {
		t.Fatal(err)
	}
	v = tl.l.View()
	if got := readAll(t, v, 500); !bytes.Equal(got, bytes.Join(tl.batches[:20], nil)) || v.SizeBytes() != int64(len(got)) {
		t.Fatalf("view after PublishThrough(%d): %d bytes, size %d", tl.endOf(20), len(got), v.SizeBytes())
	}
	if p := tl.l.Published(); p.NextOffset != tl.endOf(20) {
		t.Fatalf("published position %+v", p)
	}
	if err := tl.l.TruncateTo(tl.endOf(19)); err == nil {
		t.Fatal("truncated published data")
	}
	segsBefore := len(segmentFiles(t, dir, ".log"))
	if err := tl.l.TruncateTo(tl.endOf(22)); err != nil {
		t.Fatal(err)
	}
	if tl.l.NextOffset() != tl.endOf(22) {
		t.Fatalf("next offset %d after truncation, want %d", tl.l.NextOffset(), tl.endOf(22))
	}
	if n := len(segmentFiles(t, dir, ".log")); n >= segsBefore {
		t.Fatalf("%d segment files after truncation, %d before", n, segsBefore)
	}
	tl.batches = tl.batches[:22]
	tl.fill(15) // different sizes from here on: fill varies them by count
	if err := tl.l.PublishThrough(tl.l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, tl.l.View(), 1<<20); !bytes.Equal(got, bytes.Join(tl.batches, nil)) {
		t.Fatal("log after truncation and new appends differs")
	}

	// Reopen with a durable position behind the end: the batches after it
	// are kept unpublished, bytes past the end are cut.
	tl.fill(5)
	if err := tl.l.PublishThrough(tl.endOf(len(tl.batches) - 3)); err != nil {
		t.Fatal(err)
	}
	durable := tl.l.Published()
	if err := tl.l.SyncAppended(); err != nil {
		t.Fatal(err)
	}
	end := tl.l.Position()
	tl.fill(2) // past the end: a crash before the raft log named them
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := OpenPartitionLogAt(dir, smallSegments, durable, end)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if hw := l.View().HighWatermark(); hw != durable.NextOffset {
		t.Fatalf("reopened high watermark %d, want the durable %d", hw, durable.NextOffset)
	}
	if l.NextOffset() != end.NextOffset {
		t.Fatalf("reopened next offset %d, want %d", l.NextOffset(), end.NextOffset)
	}
	if err := l.TruncateTo(tl.endOf(len(tl.batches) - 3)); err != nil { // the last kept batch goes
		t.Fatal(err)
	}
	if err := l.PublishThrough(tl.endOf(len(tl.batches) - 3)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l.View(), 1<<20); !bytes.Equal(got, bytes.Join(tl.batches[:len(tl.batches)-3], nil)) {
		t.Fatal("reopened log differs")
	}
	// An External read back at open.
	b, err := l.ReadAt(durable.SegmentBase, 0, 61)
	if err != nil || len(b) != 61 {
		t.Fatalf("ReadAt: %v", err)
	}
	if _, err := l.ReadAt(durable.SegmentBase, 0, 1<<30); err == nil {
		t.Fatal("ReadAt past the segment's end")
	}
}
