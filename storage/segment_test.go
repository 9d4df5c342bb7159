package storage

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// testBatch builds a record batch v2 with the framing fields the log reads;
// the payload repeats the base offset so that misplaced bytes show.
func testBatch(base int64, records int32, maxTS int64, size int) []byte {
	size = max(size, batchHeaderLen)
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b[0:], uint64(base))
	binary.BigEndian.PutUint32(b[8:], uint32(size-12))
	b[16] = batchMagic
	binary.BigEndian.PutUint32(b[23:], uint32(records-1))
	binary.BigEndian.PutUint64(b[27:], uint64(maxTS-1))
	binary.BigEndian.PutUint64(b[35:], uint64(maxTS))
	for i := batchHeaderLen; i < size; i++ {
		b[i] = byte(base + int64(i))
	}
	return b
}

// testLog is a log under test with a copy of every batch it was given.
type testLog struct {
	t       testing.TB
	l       *PartitionLog
	batches [][]byte
}

func openTestLog(t testing.TB, dir string, opts LogOptions, pos LogPosition) *testLog {
	t.Helper()
	l, err := OpenPartitionLog(dir, opts, pos)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, l: l}
}

// append adds a batch of records records and returns it.
func (tl *testLog) append(records int32, maxTS int64, size int) []byte {
	tl.t.Helper()
	b := testBatch(tl.l.NextOffset(), records, maxTS, size)
	if err := tl.l.Append(b); err != nil {
		tl.t.Fatal(err)
	}
	tl.batches = append(tl.batches, b)
	return b
}

// fill appends n batches with varied sizes, record counts and timestamps
// (not monotonic, like real producers' clocks).
func (tl *testLog) fill(n int) {
	tl.t.Helper()
	for i := range n {
		tl.append(int32(1+i%4), int64(1000+(i*37)%101+i), 61+(i*53)%300)
	}
}

// batchFor returns the stored batch containing offset.
func (tl *testLog) batchFor(offset int64) (int, []byte) {
	for i, b := range tl.batches {
		h, _ := parseBatchHeader(b)
		if h.baseOffset <= offset && offset <= h.lastOffset {
			return i, b
		}
	}
	return -1, nil
}

func segmentFiles(t testing.TB, dir, ext string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func TestIndexLookup(t *testing.T) {
	idx := []offsetEntry{{rel: 10, pos: 100}, {rel: 20, pos: 200}}
	for _, c := range []struct {
		rel  uint32
		want int64
	}{{0, 0}, {9, 0}, {10, 100}, {19, 100}, {20, 200}, {99, 200}} {
		if got := lookupOffset(idx, c.rel); got != c.want {
			t.Errorf("lookupOffset(%d) = %d, want %d", c.rel, got, c.want)
		}
	}
	tidx := []timeEntry{{ts: 5, rel: 1}, {ts: 9, rel: 4}}
	if _, ok := lookupTime(tidx, 5); ok {
		t.Error("lookupTime(5) ruled out the batch holding 5")
	}
	if rel, ok := lookupTime(tidx, 6); !ok || rel != 1 {
		t.Errorf("lookupTime(6) = %d, %v", rel, ok)
	}
	if rel, ok := lookupTime(tidx, 100); !ok || rel != 4 {
		t.Errorf("lookupTime(100) = %d, %v", rel, ok)
	}
	back, err := decodeOffsetIndex(encodeOffsetIndex(idx), 300)
	if err != nil || len(back) != 2 || back[1] != idx[1] {
		t.Errorf("offset index round trip: %v, %v", back, err)
	}
	if _, err := decodeOffsetIndex(encodeOffsetIndex(idx), 150); err == nil {
		t.Error("entry past the segment end accepted")
	}
	if _, err := decodeOffsetIndex(make([]byte, 16), 300); err == nil {
		t.Error("zeroed index accepted")
	}
	tback, err := decodeTimeIndex(encodeTimeIndex(tidx))
	if err != nil || len(tback) != 2 || tback[1] != tidx[1] {
		t.Errorf("time index round trip: %v, %v", tback, err)
	}
}

// BenchmarkOpen1GB opens a log holding 1 GiB in 1 KiB batches: seven sealed
// 128 MiB segments loaded from their index files and a nearly full active
// segment rebuilt by walking its 130k batch headers.
func BenchmarkOpen1GB(b *testing.B) {
	dir := b.TempDir()
	tl := openTestLog(b, dir, LogOptions{}, LogPosition{})
	start := time.Now()
	batch := testBatch(0, 10, 0, 1024)
	for tl.l.active.size+tl.l.sealedBytes < 1<<30 {
		next := tl.l.NextOffset()
		binary.BigEndian.PutUint64(batch[0:], uint64(next))
		binary.BigEndian.PutUint64(batch[35:], uint64(next))
		if err := tl.l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	pos := tl.l.Position()
	if err := tl.l.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote 1 GiB in %v; active segment %d bytes", time.Since(start), pos.SegmentSize)
	b.ResetTimer()
	for b.Loop() {
		l, err := OpenPartitionLog(dir, LogOptions{}, pos)
		if err != nil {
			b.Fatal(err)
		}
		if l.View().SizeBytes() < 1<<30 {
			b.Fatalf("opened %d bytes", l.View().SizeBytes())
		}
		l.Close()
	}
}

func TestOpenRejectsInconsistentPosition(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, LogOptions{}, LogPosition{})
	tl.fill(10)
	pos := tl.l.Position()
	tl.l.Close()

	for _, bad := range []LogPosition{
		{NextOffset: pos.NextOffset, SegmentBase: 0, SegmentSize: pos.SegmentSize + 1}, // bytes lost
		{NextOffset: pos.NextOffset + 1, SegmentBase: 0, SegmentSize: pos.SegmentSize}, // offset mismatch
		{NextOffset: 5, SegmentBase: 5, SegmentSize: 100},                              // missing segment
		{NextOffset: pos.NextOffset, SegmentBase: 0, SegmentSize: pos.SegmentSize - 1}, // torn batch
	} {
		if l, err := OpenPartitionLog(dir, LogOptions{}, bad); err == nil {
			l.Close()
			t.Errorf("opened at %+v", bad)
		}
	}
	// The refused opens must not have damaged the log.
	l, err := OpenPartitionLog(dir, LogOptions{}, pos)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := l.View().Read(0, 1<<20)
	if err != nil || !bytes.Equal(got, bytes.Join(tl.batches, nil)) {
		t.Fatalf("read after refused opens: %d bytes, %v", len(got), err)
	}
}

func TestIndexFileDensity(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, LogOptions{SegmentBytes: 1 << 20, IndexIntervalBytes: 1000}, LogPosition{})
	for range 100 {
		tl.append(1, 1, 500)
	}
	tl.l.Close()
	fi, err := os.Stat(segmentPath(dir, 0, ".index"))
	if err != nil {
		t.Fatal(err)
	}
	// 50 KB of log with an entry every 1000 bytes (every second batch).
	if n := fi.Size() / offsetEntrySize; n != 49 {
		t.Errorf("%d index entries, want 49", n)
	}
}
