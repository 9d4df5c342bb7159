package raftactor

import (
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// producerLog drives a producerTable the way Partition.Apply does: check,
// then record the batch at the next offset unless it was refused or a
// duplicate.
type producerLog struct {
	t    *testing.T
	tab  *producerTable
	next int64
}

func newProducerLog(t *testing.T) *producerLog {
	return &producerLog{t: t, tab: newProducerTable()}
}

func hdr(pid int64, epoch int16, seq int32, records int32) protocol.BatchHeader {
	return protocol.BatchHeader{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: records - 1, NumRecords: records}
}

// write expects h to be accepted and returns its offset.
func (l *producerLog) write(h protocol.BatchHeader) int64 {
	l.t.Helper()
	off, dup, err := l.tab.check(h, testClock)
	if err != nil || dup {
		l.t.Fatalf("batch pid %d epoch %d seq %d: dup %v (offset %d) err %v, want accepted", h.ProducerID, h.ProducerEpoch, h.BaseSequence, dup, off, err)
	}
	base := l.next
	l.tab.record(h, base, testClock)
	l.next += int64(h.LastOffsetDelta) + 1
	return base
}

func (l *producerLog) expectDup(h protocol.BatchHeader, want int64) {
	l.t.Helper()
	off, dup, err := l.tab.check(h, testClock)
	if err != nil || !dup || off != want {
		l.t.Fatalf("retry of seq %d: dup %v offset %d err %v, want duplicate at %d", h.BaseSequence, dup, off, err, want)
	}
}

func (l *producerLog) expectErr(h protocol.BatchHeader, want *kerr.Error) {
	l.t.Helper()
	_, dup, err := l.tab.check(h, testClock)
	if err != want {
		l.t.Fatalf("batch epoch %d seq %d: dup %v err %v, want %v", h.ProducerEpoch, h.BaseSequence, dup, err, want)
	}
}

func TestProducerDuplicatesWithinWindow(t *testing.T) {
	l := newProducerLog(t)
	l.next = 100
	var offs []int64
	for i := int32(0); i < producerWindow; i++ {
		offs = append(offs, l.write(hdr(7, 0, 2*i, 2)))
	}
	for i := int32(0); i < producerWindow; i++ {
		l.expectDup(hdr(7, 0, 2*i, 2), offs[i])
	}
	// Same first sequence, different length: not the same batch, and not
	// the next sequence either.
	l.expectErr(hdr(7, 0, 0, 3), kerr.OutOfOrderSequenceNumber)

	// A sixth batch pushes the first out of the window: its retry is now
	// out of order, the other four are still answered with their offsets.
	offs = append(offs, l.write(hdr(7, 0, 10, 2)))
	l.expectErr(hdr(7, 0, 0, 2), kerr.OutOfOrderSequenceNumber)
	for i := int32(1); i <= producerWindow; i++ {
		l.expectDup(hdr(7, 0, 2*i, 2), offs[i])
	}
	if n := len(l.tab.m[7].Batches); n != producerWindow {
		t.Fatalf("%d batches remembered, want %d", n, producerWindow)
	}

	// Other producers do not interfere.
	l.write(hdr(8, 0, 0, 1))
	l.expectDup(hdr(7, 0, 10, 2), offs[5])
}

func TestProducerSequenceGap(t *testing.T) {
	l := newProducerLog(t)
	l.write(hdr(7, 3, 0, 5))
	l.expectErr(hdr(7, 3, 6, 1), kerr.OutOfOrderSequenceNumber) // skips 5
	l.expectErr(hdr(7, 3, 4, 2), kerr.OutOfOrderSequenceNumber) // overlaps
	// A refused batch changes nothing: the expected sequence still goes on.
	l.write(hdr(7, 3, 5, 1))
	l.write(hdr(7, 3, 6, 4))
}

func TestProducerEpochs(t *testing.T) {
	l := newProducerLog(t)
	l.write(hdr(7, 2, 0, 3))
	l.write(hdr(7, 2, 3, 3))

	l.expectErr(hdr(7, 1, 6, 1), kerr.InvalidProducerEpoch) // stale epoch
	l.expectErr(hdr(7, 1, 0, 1), kerr.InvalidProducerEpoch)

	// A bumped epoch must start again at sequence 0.
	l.expectErr(hdr(7, 3, 6, 1), kerr.OutOfOrderSequenceNumber)
	off := l.write(hdr(7, 3, 0, 2))
	if e := l.tab.m[7]; e.Epoch != 3 || len(e.Batches) != 1 {
		t.Fatalf("after the bump: epoch %d with %d batches, want epoch 3 with 1", e.Epoch, len(e.Batches))
	}
	l.expectDup(hdr(7, 3, 0, 2), off)
	// The old epoch is now stale, even for a batch it once wrote.
	l.expectErr(hdr(7, 2, 3, 3), kerr.InvalidProducerEpoch)
	l.write(hdr(7, 3, 2, 1))
}

func TestProducerUnknownStartsAnywhere(t *testing.T) {
	l := newProducerLog(t)
	// No state (new, or lost to retention): any sequence and epoch.
	l.write(hdr(42, 5, 1234, 10))
	l.expectErr(hdr(42, 5, 1243, 1), kerr.OutOfOrderSequenceNumber)
	l.write(hdr(42, 5, 1244, 1))
	l.write(hdr(43, 0, math.MaxInt32, 1))
}

func TestProducerSequenceWraps(t *testing.T) {
	l := newProducerLog(t)
	// MaxInt32-1, MaxInt32, 0: the batch's last sequence wraps to 0.
	h := hdr(7, 0, math.MaxInt32-1, 3)
	if h.LastSequence() != 0 {
		t.Fatalf("LastSequence %d, want 0", h.LastSequence())
	}
	off := l.write(h)
	l.expectDup(h, off)
	l.expectErr(hdr(7, 0, 0, 1), kerr.OutOfOrderSequenceNumber)
	l.write(hdr(7, 0, 1, 1))

	// A batch ending exactly at MaxInt32 is followed by sequence 0.
	l = newProducerLog(t)
	l.write(hdr(9, 0, math.MaxInt32-4, 5))
	l.expectErr(hdr(9, 0, math.MaxInt32, 1), kerr.OutOfOrderSequenceNumber)
	off = l.write(hdr(9, 0, 0, 1))
	l.expectDup(hdr(9, 0, 0, 1), off)
	l.expectDup(hdr(9, 0, math.MaxInt32-4, 5), 0)
}

// testClock is a partition clock (ms) for tests of the producer table.
const testClock = int64(1_700_000_000_000)

// TestProducerExpiry forgets a producer idle longer than producerExpiry and
// keeps a recent one; a forgotten producer starts over at any sequence.
// Expiry goes by the partition clock passed in, never a replica's own, and
// an expired producer counts as unknown before any sweep removed it.
func TestProducerExpiry(t *testing.T) {
	tab := newProducerTable()
	h := protocol.BatchHeader{ProducerID: 7, ProducerEpoch: 0, BaseSequence: 0, LastOffsetDelta: 0}
	tab.record(h, 0, testClock)
	h2 := h
	h2.ProducerID = 8
	later := testClock + (25 * time.Hour).Milliseconds()
	tab.record(h2, 1, later)
	h.BaseSequence = 42
	if _, dup, err := tab.check(h, later); dup || err != nil {
		t.Fatalf("an expired producer writing again, before the sweep: dup %v err %v, want accepted", dup, err)
	}
	if _, _, err := tab.check(h, testClock+1000); err == nil {
		t.Fatal("a gap accepted from a producer that is not expired at that clock")
	}
	tab.expire(later)
	if _, ok := tab.m[7]; ok {
		t.Fatal("a producer idle for 25 hours was kept")
	}
	if _, ok := tab.m[8]; !ok {
		t.Fatal("a producer that just wrote was expired")
	}
	if _, dup, err := tab.check(h, later); dup || err != nil {
		t.Fatalf("an expired producer writing again: dup %v err %v, want accepted", dup, err)
	}
}

// The leader's clock travels in the entry: apply takes the partition
// clock from it, not from the replica's own wall clock, so a follower
// applying the entry a day later keeps the same producer state.
func TestStampedClockDecidesExpiry(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	p, _, err := OpenPartition(PartitionConfig{Group: testGroup, Dir: t.TempDir(), DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(false)
	at := time.Unix(1_800_000_000, 0)
	if res := applyAsLeader(t, p, 2, 1, EncodeProduce(idempotentBatch("s", 1, 7, 0, 0)), at).(*ProduceResult); res.Err != nil {
		t.Fatal(res.Err)
	}
	if p.clock != at.UnixMilli() || p.producers.m[7].LastWrite != at.UnixMilli() {
		t.Fatalf("clock %d, last write %d, want %d", p.clock, p.producers.m[7].LastWrite, at.UnixMilli())
	}
	// A day and more later, the producer is unknown: a batch at any
	// sequence is accepted.
	if res := applyAsLeader(t, p, 3, 1, EncodeProduce(idempotentBatch("s", 1, 7, 0, 40)), at.Add(25*time.Hour)).(*ProduceResult); res.Err != nil {
		t.Fatalf("expired producer refused: %v", res.Err)
	}
	// A leader whose wall clock is behind does not move the clock back.
	if res := applyAsLeader(t, p, 4, 1, EncodeProduce(idempotentBatch("s", 1, 9, 0, 0)), at).(*ProduceResult); res.Err != nil || p.clock != at.Add(25*time.Hour).UnixMilli() {
		t.Fatalf("an earlier clock moved the partition clock to %d (err %v)", p.clock, res.Err)
	}
}
