package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var smallSegments = LogOptions{SegmentBytes: 2000, IndexIntervalBytes: 300}

// readAll reads the whole view in steps of maxBytes and checks each step
// returns whole batches starting at the requested offset.
func readAll(t *testing.T, v *ReadView, maxBytes int32) []byte {
	t.Helper()
	var out []byte
	for off := v.LogStartOffset(); off < v.HighWatermark(); {
		b, err := v.Read(off, maxBytes)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(b) == 0 {
			t.Fatalf("Read(%d) below the high watermark %d returned nothing", off, v.HighWatermark())
		}
		for rest := b; len(rest) > 0; {
			h, err := parseBatchHeader(rest)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			if h.baseOffset != off {
				t.Fatalf("Read: batch at %d, want %d", h.baseOffset, off)
			}
			rest, off = rest[h.size:], h.lastOffset+1
		}
		out = append(out, b...)
	}
	return out
}

func TestAppendReadAcrossRolls(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, smallSegments, LogPosition{})
	defer tl.l.Close()
	tl.fill(300)
	tl.l.Publish()
	v := tl.l.View()

	if n := len(segmentFiles(t, dir, ".log")); n < 10 {
		t.Fatalf("%d segments, want rolls", n)
	}
	// Sealed segments have their index files; the active one not yet.
	if n, m := len(segmentFiles(t, dir, ".index")), len(segmentFiles(t, dir, ".log")); n != m-1 {
		t.Errorf("%d index files for %d segments", n, m)
	}
	all := bytes.Join(tl.batches, nil)
	if v.SizeBytes() != int64(len(all)) {
		t.Errorf("SizeBytes %d, want %d", v.SizeBytes(), len(all))
	}
	for _, maxBytes := range []int32{1, 500, 1 << 20} {
		if got := readAll(t, v, maxBytes); !bytes.Equal(got, all) {
			t.Errorf("maxBytes %d: read %d bytes differing from the %d appended", maxBytes, len(got), len(all))
		}
	}
	// Every offset finds its own batch, first.
	for off := int64(0); off < v.HighWatermark(); off++ {
		_, want := tl.batchFor(off)
		got, err := v.Read(off, 1)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Read(%d, 1) = %d bytes, %v; want its batch of %d", off, len(got), err, len(want))
		}
	}
}

func TestReadSemantics(t *testing.T) {
	// A log starting at 100, as after a snapshot or retention.
	tl := openTestLog(t, t.TempDir(), LogOptions{}, LogPosition{NextOffset: 100, SegmentBase: 100})
	defer tl.l.Close()
	b1 := tl.append(5, 10, 200) // 100-104
	b2 := tl.append(1, 11, 100) // 105
	b3 := tl.append(3, 12, 300) // 106-108
	tl.l.Publish()
	v := tl.l.View()

	check := func(off int64, maxBytes int32, want []byte) {
		t.Helper()
		got, err := v.Read(off, maxBytes)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Read(%d, %d) = %d bytes, %v; want %d bytes", off, maxBytes, len(got), err, len(want))
		}
	}
	check(102, 1<<20, bytes.Join([][]byte{b1, b2, b3}, nil)) // middle of a batch: the whole batch
	check(100, 10, b1)                                       // maxBytes below the first batch: still one
	check(100, 0, b1)
	check(100, -1, b1)
	check(100, 299, b1)                                // b2 does not fit whole
	check(100, 300, bytes.Join([][]byte{b1, b2}, nil)) // exactly fits
	check(107, 1<<20, b3)

	if v.HighWatermark() != 109 || v.LogStartOffset() != 100 {
		t.Fatalf("HW %d, start %d", v.HighWatermark(), v.LogStartOffset())
	}
	if b, err := v.Read(109, 100); b != nil || err != nil {
		t.Errorf("Read(HW) = %v, %v; want nil, nil", b, err)
	}
	for _, off := range []int64{110, 99, 0, -1} {
		if _, err := v.Read(off, 100); err != ErrOffsetOutOfRange {
			t.Errorf("Read(%d) error %v, want ErrOffsetOutOfRange", off, err)
		}
	}
}

func TestAppendRejects(t *testing.T) {
	tl := openTestLog(t, t.TempDir(), LogOptions{}, LogPosition{})
	defer tl.l.Close()
	tl.append(2, 1, 100)
	bad := map[string][]byte{
		"gap":       testBatch(5, 1, 1, 100),
		"rewind":    testBatch(0, 1, 1, 100),
		"short":     testBatch(2, 1, 1, 100)[:99],
		"long":      append(testBatch(2, 1, 1, 100), 0),
		"truncated": testBatch(2, 1, 1, 100)[:40],
	}
	magic := testBatch(2, 1, 1, 100)
	magic[batchMagicOffset] = 1
	bad["magic"] = magic
	for name, b := range bad {
		if err := tl.l.Append(b); err == nil {
			t.Errorf("%s: appended", name)
		}
	}
	// A refused batch leaves the log usable.
	tl.append(1, 1, 100)
	if tl.l.NextOffset() != 3 {
		t.Errorf("NextOffset %d", tl.l.NextOffset())
	}
}

func TestViewsAreImmutable(t *testing.T) {
	tl := openTestLog(t, t.TempDir(), smallSegments, LogPosition{})
	tl.fill(20)
	tl.l.Publish()
	old := tl.l.View()
	oldBytes := readAll(t, old, 1<<20)
	hw, size := old.HighWatermark(), old.SizeBytes()

	tl.fill(50) // rolls several times
	select {
	case <-old.Changed():
		t.Fatal("Changed closed before Publish")
	default:
	}
	if tl.l.View() != old {
		t.Fatal("Append published a view")
	}
	tl.l.Publish()
	select {
	case <-old.Changed():
	default:
		t.Fatal("Changed not closed by Publish")
	}
	if old.HighWatermark() != hw || old.SizeBytes() != size {
		t.Errorf("old view moved: HW %d→%d, size %d→%d", hw, old.HighWatermark(), size, old.SizeBytes())
	}
	if b, err := old.Read(hw, 1<<20); b != nil || err != nil {
		t.Errorf("old view reads past its HW: %d bytes, %v", len(b), err)
	}
	if got := readAll(t, old, 1<<20); !bytes.Equal(got, oldBytes) {
		t.Error("old view reads different bytes")
	}
	if _, err := old.Read(hw+1, 100); err != ErrOffsetOutOfRange {
		t.Errorf("old view beyond HW: %v", err)
	}
	if got := readAll(t, tl.l.View(), 1<<20); !bytes.Equal(got, bytes.Join(tl.batches, nil)) {
		t.Error("new view misses data")
	}

	last := tl.l.View()
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-last.Changed():
	default:
		t.Fatal("Close left Changed open")
	}
	if !tl.l.View().LogClosed() {
		t.Error("final view does not say the log closed")
	}
	tl.l.Publish() // no-op, no panic
}

// TestConcurrentAppendRead runs the writer against readers that follow the
// published views; -race checks the view hand-off.
func TestConcurrentAppendRead(t *testing.T) {
	tl := openTestLog(t, t.TempDir(), smallSegments, LogPosition{})
	defer tl.l.Close()
	const total = 2000
	// The expected bytes per offset are generated up front so readers can
	// check without sharing the writer's slice.
	want := make([][]byte, 0, total)
	for i := range total {
		want = append(want, testBatch(int64(i), 1, int64(i), 61+i%200))
	}

	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for r := range 3 {
		wg.Go(func() {
			next := int64(0)
			for next < total {
				v := tl.l.View()
				if next >= v.HighWatermark() {
					<-v.Changed()
					continue
				}
				b, err := v.Read(next, int32(100+r*400))
				if err != nil {
					errs <- err.Error()
					return
				}
				for len(b) > 0 {
					h, _ := parseBatchHeader(b)
					if h.baseOffset != next || !bytes.Equal(b[:h.size], want[next]) {
						errs <- "wrong batch"
						return
					}
					b, next = b[h.size:], next+1
				}
				// Also a random-ish older offset, through the index.
				if _, err := v.Read(next/2, 100); err != nil {
					errs <- err.Error()
					return
				}
			}
		})
	}
	for i, b := range want {
		if err := tl.l.Append(b); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 || i == total-1 {
			tl.l.Publish()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestReopenAtDurablePosition(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, smallSegments, LogPosition{})
	tl.fill(60)
	durable := tl.l.Position()
	kept := len(tl.batches)
	tl.fill(100) // more segments, then a crash: never made durable
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}

	l, err := OpenPartitionLog(dir, smallSegments, durable)
	if err != nil {
		t.Fatal(err)
	}
	if l.Position() != durable {
		t.Fatalf("reopened at %+v, want %+v", l.Position(), durable)
	}
	for _, p := range segmentFiles(t, dir, "") {
		var base int64
		var ext string
		name := filepath.Base(p)
		base = mustBase(t, name)
		ext = filepath.Ext(name)
		if base > durable.SegmentBase || (base == durable.SegmentBase && ext != ".log") {
			t.Errorf("%s survived the reopen", name)
		}
	}
	v := l.View()
	if got := readAll(t, v, 700); !bytes.Equal(got, bytes.Join(tl.batches[:kept], nil)) {
		t.Error("reopened log differs from what was durable")
	}
	// Appending resumes exactly there (the raft log re-applies).
	tl2 := &testLog{t: t, l: l, batches: tl.batches[:kept:kept]}
	tl2.fill(40)
	tl2.l.Publish()
	if got := readAll(t, tl2.l.View(), 1<<20); !bytes.Equal(got, bytes.Join(tl2.batches, nil)) {
		t.Error("appends after reopen read back differently")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// A zero position empties the log.
	l, err = OpenPartitionLog(dir, smallSegments, LogPosition{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v := l.View(); v.HighWatermark() != 0 || v.SizeBytes() != 0 {
		t.Errorf("zero position: HW %d, %d bytes", v.HighWatermark(), v.SizeBytes())
	}
	if n := len(segmentFiles(t, dir, "")); n != 1 {
		t.Errorf("%d files left, want the one empty segment", n)
	}
}

func mustBase(t *testing.T, name string) int64 {
	t.Helper()
	var base int64
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			t.Fatalf("unexpected file %s", name)
		}
		base = base*10 + int64(c-'0')
	}
	return base
}

func TestReopenIndexes(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, smallSegments, LogPosition{})
	tl.fill(200)
	pos := tl.l.Position()
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
	all := bytes.Join(tl.batches, nil)
	files := map[string][]byte{}
	for _, ext := range []string{".index", ".timeindex"} {
		for _, p := range segmentFiles(t, dir, ext) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files[p] = b
		}
	}

	reopen := func(what string) {
		t.Helper()
		l, err := OpenPartitionLog(dir, smallSegments, pos)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		v := l.View()
		if got := readAll(t, v, 500); !bytes.Equal(got, all) {
			t.Errorf("%s: read differs", what)
		}
		checkTimestamps(t, v, tl.batches)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// Rebuilt indexes equal the ones written on roll.
		for p, want := range files {
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %s differs after reopen (%v)", what, filepath.Base(p), err)
			}
		}
	}
	reopen("from index files")

	idx := segmentFiles(t, dir, ".index")
	tidx := segmentFiles(t, dir, ".timeindex")
	os.Remove(idx[0])
	os.Remove(tidx[1])
	if err := os.Truncate(idx[2], offsetEntrySize); err != nil { // short
		t.Fatal(err)
	}
	if err := os.Truncate(tidx[3], timeEntrySize); err != nil { // short: loses the max
		t.Fatal(err)
	}
	if err := os.WriteFile(idx[4], make([]byte, 3*offsetEntrySize), 0o644); err != nil { // zeroed
		t.Fatal(err)
	}
	reopen("after damaging index files")

	for _, p := range append(idx, tidx...) {
		os.Remove(p)
	}
	reopen("without index files")
}
