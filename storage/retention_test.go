package storage

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Segments of exactly four 500-byte batches of 2 records each: segment j
// holds offsets 8j..8j+7, and batch i has maxTimestamp 1000*i, so segment j's
// largest timestamp is 1000*(4j+3).
var retentionSegments = LogOptions{SegmentBytes: 2000, IndexIntervalBytes: 300}

func fillRetention(tl *testLog, batches int) {
	tl.t.Helper()
	for range batches {
		i := len(tl.batches)
		tl.append(2, int64(1000*i), 500)
	}
	tl.l.Publish()
}

// checkStart checks the view starts at start, refuses what is below it and
// reads everything from it to the end.
func checkStart(t *testing.T, tl *testLog, v *ReadView, start int64) {
	t.Helper()
	if got := v.LogStartOffset(); got != start {
		t.Fatalf("LogStartOffset %d, want %d", got, start)
	}
	if start > 0 {
		if _, err := v.Read(start-1, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read(%d) below the start: %v, want ErrOffsetOutOfRange", start-1, err)
		}
	}
	first, _ := tl.batchFor(start)
	if got, want := readAll(t, v, 700), bytes.Join(tl.batches[first:], nil); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes from %d, want %d", len(got), start, len(want))
	}
	if v.SizeBytes() != int64(len(bytes.Join(tl.batches[first:], nil))) {
		t.Fatalf("SizeBytes %d after retention", v.SizeBytes())
	}
}

func TestRetentionByTime(t *testing.T) {
	tl := openTestLog(t, t.TempDir(), retentionSegments, LogPosition{})
	defer tl.l.Close()
	fillRetention(tl, 22) // 5 sealed segments (0..39) and an active one of 2 batches (40..43)
	if n := tl.l.SegmentCount(); n != 6 {
		t.Fatalf("%d segments, want 6", n)
	}

	// Segment 1's largest timestamp is 7000: at now = 17000, a retention of
	// 10000 keeps it (not older than), 9999 deletes it.
	now := time.UnixMilli(17000)
	if n, err := tl.l.ApplyRetention(now, 10000, -1); err != nil || n != 1 {
		t.Fatalf("retention.ms 10000: deleted %d, %v; want 1 segment", n, err)
	}
	checkStart(t, tl, tl.l.View(), 8)
	if n, err := tl.l.ApplyRetention(now, 9999, -1); err != nil || n != 1 {
		t.Fatalf("retention.ms 9999: deleted %d, %v; want 1 segment", n, err)
	}
	checkStart(t, tl, tl.l.View(), 16)

	// -1 keeps forever.
	if n, _ := tl.l.ApplyRetention(time.UnixMilli(1<<50), -1, -1); n != 0 {
		t.Fatalf("retention disabled deleted %d segments", n)
	}
	// Everything expired: every sealed segment goes, never the active one.
	if n, err := tl.l.ApplyRetention(time.UnixMilli(1<<50), 0, -1); err != nil || n != 3 {
		t.Fatalf("all expired: deleted %d, %v; want 3", n, err)
	}
	checkStart(t, tl, tl.l.View(), 40)
	if n := tl.l.SegmentCount(); n != 1 {
		t.Fatalf("%d segments left, want the active one", n)
	}
	if n, _ := tl.l.ApplyRetention(time.UnixMilli(1<<50), 0, 0); n != 0 {
		t.Fatalf("deleted %d segments with only the active one left", n)
	}
	// Appending goes on at the same offsets.
	fillRetention(tl, 3)
	if hw := tl.l.View().HighWatermark(); hw != 50 {
		t.Fatalf("high watermark %d, want 50", hw)
	}
	checkStart(t, tl, tl.l.View(), 40)
}

// A segment whose batches carry no timestamp (-1) ages by its file's
// modification time, as in Kafka.
func TestRetentionByModTime(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, retentionSegments, LogPosition{})
	defer tl.l.Close()
	for range 9 {
		tl.append(2, -1, 500)
	}
	tl.l.Publish()
	now := time.Now()
	if n, _ := tl.l.ApplyRetention(now, time.Hour.Milliseconds(), -1); n != 0 {
		t.Fatalf("fresh files: deleted %d segments", n)
	}
	old := now.Add(-2 * time.Hour)
	if err := os.Chtimes(segmentPath(dir, 0, ".log"), old, old); err != nil {
		t.Fatal(err)
	}
	if n, err := tl.l.ApplyRetention(now, time.Hour.Milliseconds(), -1); err != nil || n != 1 {
		t.Fatalf("old file: deleted %d, %v; want 1", n, err)
	}
	checkStart(t, tl, tl.l.View(), 8)
}

func TestRetentionBySize(t *testing.T) {
	tl := openTestLog(t, t.TempDir(), retentionSegments, LogPosition{})
	defer tl.l.Close()
	fillRetention(tl, 22) // 5 x 2000 sealed + 1000 active = 11000 bytes
	now := time.Now()

	// Kafka's rule: delete while the log minus the segment is still at
	// least retention.bytes.
	if n, err := tl.l.ApplyRetention(now, -1, 9001); err != nil || n != 0 {
		t.Fatalf("retention.bytes 9001: deleted %d, %v; want none", n, err)
	}
	if n, err := tl.l.ApplyRetention(now, -1, 9000); err != nil || n != 1 {
		t.Fatalf("retention.bytes 9000: deleted %d, %v; want 1", n, err)
	}
	checkStart(t, tl, tl.l.View(), 8)
	if n, err := tl.l.ApplyRetention(now, -1, 4500); err != nil || n != 2 {
		t.Fatalf("retention.bytes 4500: deleted %d, %v; want 2", n, err)
	}
	checkStart(t, tl, tl.l.View(), 24)
	if v := tl.l.View(); v.SizeBytes() != 5000 {
		t.Fatalf("%d bytes left, want 5000", v.SizeBytes())
	}
	// 0 deletes every sealed segment, never the active one.
	if n, err := tl.l.ApplyRetention(now, -1, 0); err != nil || n != 2 {
		t.Fatalf("retention.bytes 0: deleted %d, %v; want 2", n, err)
	}
	checkStart(t, tl, tl.l.View(), 40)
	// Time and size together: either one deletes.
	fillRetention(tl, 10) // 44..63: segment 40 sealed at 47, then 48..55, active 56..63
	if n, err := tl.l.ApplyRetention(time.UnixMilli(30000), 8000, 1<<40); err != nil || n != 0 {
		t.Fatalf("nothing due: deleted %d, %v", n, err)
	}
	// Segment 40's largest timestamp is 23000: expired at 31001 with 8000.
	if n, err := tl.l.ApplyRetention(time.UnixMilli(31001), 8000, 1<<40); err != nil || n != 1 {
		t.Fatalf("time alone: deleted %d, %v; want 1", n, err)
	}
	if n, err := tl.l.ApplyRetention(time.UnixMilli(0), 8000, 2000); err != nil || n != 1 {
		t.Fatalf("size alone: deleted %d, %v; want 1", n, err)
	}
	checkStart(t, tl, tl.l.View(), 56)
}

// DeleteSegments offers segments oldest first with the log's size from each
// one on, and stops at the first it keeps.
func TestDeleteSegmentsPredicate(t *testing.T) {
	tl := openTestLog(t, t.TempDir(), retentionSegments, LogPosition{})
	defer tl.l.Close()
	fillRetention(tl, 13) // 3 sealed, active with one batch
	var seen []SegmentInfo
	n, err := tl.l.DeleteSegments(func(s SegmentInfo) bool {
		seen = append(seen, s)
		return s.BaseOffset == 0 // keeps 8: 16 is never offered
	})
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	want := []SegmentInfo{
		{BaseOffset: 0, NextOffset: 8, SizeBytes: 2000, LargestTimestamp: 3000, LogBytesFrom: 6500},
		{BaseOffset: 8, NextOffset: 16, SizeBytes: 2000, LargestTimestamp: 7000, LogBytesFrom: 4500},
	}
	if len(seen) != len(want) || seen[0] != want[0] || seen[1] != want[1] {
		t.Fatalf("offered %+v, want %+v", seen, want)
	}
	n, _ = tl.l.DeleteSegments(func(s SegmentInfo) bool {
		if s.BaseOffset == 24 {
			t.Errorf("offered the active segment")
		}
		return true
	})
	if n != 2 {
		t.Fatalf("deleted %d, want 2", n)
	}
	tl.l.Close()
	if _, err := tl.l.DeleteSegments(func(SegmentInfo) bool { return true }); err == nil {
		t.Fatal("DeleteSegments on a closed log succeeded")
	}
}

// A reader holding a view taken before the deletion reads the deleted
// segments until their files close, through removal of the files, and then
// gets ErrOffsetOutOfRange, never other errors or other bytes.
func TestRetentionOldViewReader(t *testing.T) {
	dir := t.TempDir()
	opts := retentionSegments
	opts.FileDeleteDelay = time.Hour
	tl := openTestLog(t, dir, opts, LogPosition{})
	defer tl.l.Close()
	fillRetention(tl, 22)
	old := tl.l.View()
	all := bytes.Join(tl.batches, nil)

	if n, err := tl.l.ApplyRetention(time.Now(), -1, 0); err != nil || n != 5 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	if err := tl.l.RemoveDeleted(tl.l.Position()); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir, ".log")); n != 1 {
		t.Fatalf("%d .log files after RemoveDeleted, want 1", n)
	}
	if got := readAll(t, old, 700); !bytes.Equal(got, all) {
		t.Fatal("old view reads differently after the files were removed")
	}
	if _, found, err := old.OffsetForTimestamp(0); err != nil || !found {
		t.Fatalf("old view OffsetForTimestamp: %v, %v", found, err)
	}

	// The delay passes: the fds close, the old view's reads below the
	// start are out of range; the active segment still reads.
	tl.l.closeExpired(time.Now().Add(2 * time.Hour))
	if len(tl.l.retired) != 0 {
		t.Fatalf("%d retired segments kept after close and removal", len(tl.l.retired))
	}
	for _, off := range []int64{0, 9, 39} {
		if _, err := old.Read(off, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("old view Read(%d) after close: %v, want ErrOffsetOutOfRange", off, err)
		}
	}
	if _, _, err := old.OffsetForTimestamp(0); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("old view OffsetForTimestamp after close: %v", err)
	}
	if got, err := old.Read(40, 1<<20); err != nil || !bytes.Equal(got, bytes.Join(tl.batches[20:], nil)) {
		t.Fatalf("old view Read(40) in the active segment: %d bytes, %v", len(got), err)
	}
}

// Readers on other goroutines, with fresh and old views, while the writer
// appends and deletes with files closed at once: under -race, and every
// read either succeeds with the right bytes or is out of range.
func TestRetentionConcurrentReaders(t *testing.T) {
	dir := t.TempDir()
	opts := retentionSegments
	opts.FileDeleteDelay = -1 // close at once: the worst case for readers
	tl := openTestLog(t, dir, opts, LogPosition{})
	defer tl.l.Close()
	fillRetention(tl, 8)

	var mu sync.Mutex
	batches := func() [][]byte { mu.Lock(); defer mu.Unlock(); return tl.batches }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var reads, outOfRange atomic.Int64
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held *ReadView
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := tl.l.View()
				if r%2 == 1 && held != nil && i%50 != 0 {
					v = held // keep reading through an old view
				}
				held = v
				for off := v.LogStartOffset(); off < v.HighWatermark(); off += 3 {
					got, err := v.Read(off, 1)
					if errors.Is(err, ErrOffsetOutOfRange) {
						outOfRange.Add(1)
						continue
					}
					reads.Add(1)
					if err != nil {
						errs <- err
						return
					}
					bs := batches()
					h, _ := parseBatchHeader(got)
					if want := bs[h.baseOffset/2]; !bytes.Equal(got, want) || h.lastOffset < off || h.baseOffset > off {
						errs <- errors.New("read returned the wrong batch")
						return
					}
				}
			}
		}()
	}
	for round := range 200 {
		mu.Lock()
		for range 3 {
			i := len(tl.batches)
			b := testBatch(tl.l.NextOffset(), 2, int64(1000*i), 500)
			if err := tl.l.Append(b); err != nil {
				t.Fatal(err)
			}
			tl.batches = append(tl.batches, b)
		}
		mu.Unlock()
		tl.l.Publish()
		if _, err := tl.l.ApplyRetention(time.Now(), -1, 6000); err != nil {
			t.Fatal(err)
		}
		if round%5 == 0 {
			if err := tl.l.RemoveDeleted(tl.l.Position()); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d reads, %d out of range", reads.Load(), outOfRange.Load())
	if v := tl.l.View(); v.SizeBytes() >= 6000+2000 || v.LogStartOffset() == 0 {
		t.Errorf("after retention: %d bytes from %d", v.SizeBytes(), v.LogStartOffset())
	}
}

// Reopening keeps the offsets and the start offset, whether the files of the
// deleted segments were removed or a crash left them, and a position
// recorded before the deletion reopens whatever is still on disk.
func TestRetentionReopen(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, retentionSegments, LogPosition{})
	fillRetention(tl, 22)
	before := tl.l.Position()
	if n, err := tl.l.ApplyRetention(time.Now(), -1, 7000); err != nil || n != 2 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	after := tl.l.Position()
	if after.LogStartOffset != 16 || after.NextOffset != before.NextOffset || after.SegmentBase != before.SegmentBase {
		t.Fatalf("position after retention %+v (before %+v)", after, before)
	}
	if !tl.l.DeletePending() {
		t.Fatal("no deletion pending before RemoveDeleted")
	}
	// A position recorded before the deletion removes nothing.
	if err := tl.l.RemoveDeleted(before); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir, ".log")); n != 6 {
		t.Fatalf("%d .log files, want all 6 until the new start is durable", n)
	}
	// The job of a checkpoint that captured the deleted segments still runs.
	j := tl.l.PrepareSync()
	if err := j.Run(); err != nil {
		t.Fatal(err)
	}
	if j.Position() != after {
		t.Fatalf("sync job position %+v, want %+v", j.Position(), after)
	}

	// Crash before the files went: the old position reopens the whole log.
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := OpenPartitionLog(dir, retentionSegments, before)
	if err != nil {
		t.Fatal(err)
	}
	tl.l = l
	checkStart(t, tl, l.View(), 0)
	if _, err := l.ApplyRetention(time.Now(), -1, 7000); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Crash after the new start was recorded, before the files went: the
	// reopen removes them and starts there.
	l, err = OpenPartitionLog(dir, retentionSegments, after)
	if err != nil {
		t.Fatal(err)
	}
	tl.l = l
	checkStart(t, tl, l.View(), 16)
	if l.Position() != after {
		t.Fatalf("reopened at %+v, want %+v", l.Position(), after)
	}
	for _, p := range segmentFiles(t, dir, "") {
		if base := mustBase(t, p[len(dir)+1:]); base < 16 {
			t.Errorf("%s survived the reopen", p)
		}
	}

	// More retention, the files removed this time; then a reopen, even at a
	// position from before (the log then starts at its first segment).
	fillRetention(tl, 4)
	if n, err := l.ApplyRetention(time.Now(), -1, 5000); err != nil || n != 2 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	j = l.PrepareSync()
	if err := j.Run(); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoveDeleted(j.Position()); err != nil {
		t.Fatal(err)
	}
	if l.DeletePending() {
		t.Fatal("deletion still pending after RemoveDeleted")
	}
	durable := j.Position()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pos := range []LogPosition{durable, {NextOffset: durable.NextOffset, SegmentBase: durable.SegmentBase, SegmentSize: durable.SegmentSize}} {
		l, err = OpenPartitionLog(dir, retentionSegments, pos)
		if err != nil {
			t.Fatalf("reopen at %+v: %v", pos, err)
		}
		tl.l = l
		checkStart(t, tl, l.View(), 32)
		if l.View().HighWatermark() != durable.NextOffset {
			t.Fatalf("high watermark %d, want %d", l.View().HighWatermark(), durable.NextOffset)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// A start above the active segment is refused.
	bad := durable
	bad.LogStartOffset = durable.SegmentBase + 1
	if l, err := OpenPartitionLog(dir, retentionSegments, bad); err == nil {
		l.Close()
		t.Fatalf("opened at %+v", bad)
	}
}

// A sync job prepared before retention deleted some of its segments (and
// closed and removed their files) still succeeds: they need no sync.
func TestRetentionDuringSync(t *testing.T) {
	opts := retentionSegments
	opts.FileDeleteDelay = -1
	tl := openTestLog(t, t.TempDir(), opts, LogPosition{})
	defer tl.l.Close()
	fillRetention(tl, 22)
	j := tl.l.PrepareSync()
	if n, err := tl.l.ApplyRetention(time.Now(), -1, 0); err != nil || n != 5 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	if err := tl.l.RemoveDeleted(tl.l.Position()); err != nil {
		t.Fatal(err)
	}
	if len(tl.l.retired) != 0 {
		t.Fatalf("%d retired segments kept", len(tl.l.retired))
	}
	if err := j.Run(); err != nil {
		t.Fatalf("sync job over deleted segments: %v", err)
	}
}
