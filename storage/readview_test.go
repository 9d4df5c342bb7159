package storage

import (
	"bytes"
	"math"
	"sync"
	"testing"
)

// checkTimestamps compares OffsetForTimestamp and MaxTimestampBatch with a
// brute-force answer over the batches.
func checkTimestamps(t *testing.T, v *ReadView, batches [][]byte) {
	t.Helper()
	maxTS := int64(math.MinInt64)
	var maxBatch []byte
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, b := range batches {
		h, _ := parseBatchHeader(b)
		if h.maxTimestamp > maxTS {
			maxTS, maxBatch = h.maxTimestamp, b
		}
		lo, hi = min(lo, h.maxTimestamp), max(hi, h.maxTimestamp)
	}
	for ts := lo - 2; ts <= hi+2; ts++ {
		var want []byte
		for _, b := range batches {
			if h, _ := parseBatchHeader(b); h.maxTimestamp >= ts {
				want = b
				break
			}
		}
		got, found, err := v.OffsetForTimestamp(ts)
		if err != nil || found != (want != nil) || !bytes.Equal(got, want) {
			t.Fatalf("OffsetForTimestamp(%d) = %d bytes, %v, %v; want %d bytes", ts, len(got), found, err, len(want))
		}
	}
	got, found, err := v.MaxTimestampBatch()
	if err != nil || found != (maxBatch != nil) || !bytes.Equal(got, maxBatch) {
		t.Fatalf("MaxTimestampBatch = %d bytes, %v, %v; want %d bytes", len(got), found, err, len(maxBatch))
	}
}

func TestTimestampLookups(t *testing.T) {
	tl := openTestLog(t, t.TempDir(), smallSegments, LogPosition{})
	defer tl.l.Close()
	checkTimestamps(t, tl.l.View(), nil)

	tl.fill(250)
	// The largest timestamp twice: the earliest batch wins.
	tl.append(1, 5000, 100)
	tl.append(1, 10, 100)
	tl.append(1, 5000, 100)
	tl.append(2, 4000, 100) // in the active segment, unpublished at first
	tl.l.Publish()
	checkTimestamps(t, tl.l.View(), tl.batches)

	// A view does not see timestamps appended after it.
	v := tl.l.View()
	tl.append(1, 9000, 100)
	if _, found, _ := v.OffsetForTimestamp(8000); found {
		t.Error("old view found an unpublished timestamp")
	}
	tl.l.Publish()
	checkTimestamps(t, tl.l.View(), tl.batches)
}

func TestTimestampLookupsOneSegment(t *testing.T) {
	// Monotonic timestamps in a large segment: the time index is used
	// heavily and everything is in the active segment.
	tl := openTestLog(t, t.TempDir(), LogOptions{IndexIntervalBytes: 256}, LogPosition{})
	defer tl.l.Close()
	for i := range 300 {
		tl.append(2, int64(i*3), 150)
	}
	tl.l.Publish()
	checkTimestamps(t, tl.l.View(), tl.batches)
}

// TestSyncWhileAppending runs sync jobs on another goroutine while the
// writer keeps appending and rolling, then reopens at the last durable
// position.
func TestSyncWhileAppending(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, smallSegments, LogPosition{})
	jobs := make(chan *SyncJob, 4)
	var (
		wg      sync.WaitGroup
		durable LogPosition
		runErr  error
	)
	wg.Go(func() {
		for j := range jobs {
			if err := j.Run(); err != nil {
				runErr = err
				return
			}
			durable = j.Position()
		}
	})
	sizes := map[int64]int{} // NextOffset → number of batches, to check the reopen
	for i := range 400 {
		tl.fill(1)
		if i%13 == 0 {
			j := tl.l.PrepareSync()
			sizes[j.Position().NextOffset] = len(tl.batches)
			jobs <- j
		}
	}
	close(jobs)
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
	// Segments sealed before the last job's active one were synced: the
	// next job leaves them out, and syncs the directory only for new ones.
	j := tl.l.PrepareSync()
	for _, s := range j.sealed {
		if s.base < durable.SegmentBase {
			t.Errorf("segment %d synced again", s.base)
		}
	}
	if j.syncDir != (j.pos.SegmentBase > durable.SegmentBase) {
		t.Errorf("next job syncs dir %v, active %d, last synced %d", j.syncDir, j.pos.SegmentBase, durable.SegmentBase)
	}
	if err := j.Run(); err != nil {
		t.Fatal(err)
	}
	tl.l.Close()

	l, err := OpenPartitionLog(dir, smallSegments, durable)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := sizes[durable.NextOffset]
	if got := readAll(t, l.View(), 1<<20); !bytes.Equal(got, bytes.Join(tl.batches[:n], nil)) {
		t.Error("log at the durable position differs")
	}
}

func TestSyncJobCoversNewDirectory(t *testing.T) {
	dir := t.TempDir() + "/topic-0"
	tl := openTestLog(t, dir, LogOptions{}, LogPosition{})
	defer tl.l.Close()
	j := tl.l.PrepareSync()
	if !j.syncDir || !j.syncParent {
		t.Errorf("first job of a new log: dir %v, parent %v", j.syncDir, j.syncParent)
	}
	if err := j.Run(); err != nil {
		t.Fatal(err)
	}
	tl.fill(3)
	j = tl.l.PrepareSync()
	if j.syncDir || j.syncParent || len(j.sealed) != 0 {
		t.Errorf("second job: dir %v, parent %v, %d sealed", j.syncDir, j.syncParent, len(j.sealed))
	}
	if err := j.Run(); err != nil {
		t.Fatal(err)
	}
	if j.Position() != tl.l.Position() {
		t.Errorf("job position %+v, log %+v", j.Position(), tl.l.Position())
	}
}

func TestDelete(t *testing.T) {
	dir := t.TempDir() + "/p"
	tl := openTestLog(t, dir, smallSegments, LogPosition{})
	tl.fill(30)
	if err := tl.l.Delete(); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir, "")); n != 0 {
		t.Errorf("%d files left", n)
	}
	if err := tl.l.Append(testBatch(tl.l.NextOffset(), 1, 1, 100)); err == nil {
		t.Error("append after Delete")
	}
}
