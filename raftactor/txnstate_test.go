package raftactor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/storage"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// txnBatch is idempotentBatch with the transactional attribute, as a
// transactional producer sends it.
func txnBatch(tag string, n int, pid int64, epoch int16, seq int32) []byte {
	b := idempotentBatch(tag, n, pid, epoch, seq)
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|0x10)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func marker(pid int64, epoch int16, commit bool, coordEpoch int32) []byte {
	return protocol.BuildControlBatch(pid, epoch, commit, coordEpoch, 1700000000000)
}

// txnPartition drives a Partition as a ready leader and its replica do:
// Prepare, Persist, Apply, Applied, one entry at a time.
type txnPartition struct {
	t     *testing.T
	db    *storage.DB
	dir   string
	p     *Partition
	index uint64
}

func openTxnPartition(t *testing.T) *txnPartition {
	dir := t.TempDir()
	tp := &txnPartition{t: t, db: openDB(t, filepath.Join(dir, "db")), dir: filepath.Join(dir, "t-0"), index: 1}
	t.Cleanup(func() { tp.db.Close() })
	tp.open()
	return tp
}

func (tp *txnPartition) open() {
	tp.t.Helper()
	p, _, err := OpenPartition(PartitionConfig{Group: testGroup, Dir: tp.dir, DB: tp.db})
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.p = p
	// Leading from the start, so that a guard read for a verified
	// command (TxnGuard) is of this leadership.
	p.Lead(true)
	tp.t.Cleanup(func() { p.Close(false) })
}

// write takes cmd through the leader and the apply, and returns its result.
func (tp *txnPartition) write(cmd []byte) *ProduceResult {
	tp.t.Helper()
	tp.index++
	v := applyAsLeader(tp.t, tp.p, tp.index, 2, cmd, time.Now())
	tp.p.Applied()
	r, ok := v.(*ProduceResult)
	if !ok {
		tp.t.Fatalf("Apply returned %T %v", v, v)
	}
	return r
}

func (tp *txnPartition) ok(cmd []byte) int64 {
	tp.t.Helper()
	r := tp.write(cmd)
	if r.Err != nil {
		tp.t.Fatalf("refused: %v", r.Err)
	}
	return r.BaseOffset
}

func (tp *txnPartition) refused(cmd []byte, want *kerr.Error) {
	tp.t.Helper()
	if r := tp.write(cmd); r.Err != want {
		tp.t.Fatalf("got %+v, want %v", r, want)
	}
}

func (tp *txnPartition) lso() int64 {
	return tp.p.Txns().LastStable(tp.p.View().HighWatermark())
}

func (tp *txnPartition) expectLSO(want int64) {
	tp.t.Helper()
	if got := tp.lso(); got != want {
		tp.t.Fatalf("LSO %d (high watermark %d), want %d", got, tp.p.View().HighWatermark(), want)
	}
}

// An open transaction holds the LSO at its first batch, through other
// producers' writes; its abort releases it and indexes the aborted range;
// a commit releases it with no index entry.
func TestTxnCommitAbortLSO(t *testing.T) {
	tp := openTxnPartition(t)
	const pid = 40
	tp.ok(EncodeProduce(idempotentBatch("plain", 1, 99, 0, 0)))
	tp.expectLSO(1)

	// KIP-890: a transactional write nobody verified starts nothing.
	tp.refused(EncodeProduce(txnBatch("t", 2, pid, 0, 0)), kerr.InvalidTxnState)
	first := tp.ok(EncodeVerifiedProduce(txnBatch("t", 2, pid, 0, 0), tp.p.TxnGuard()))
	if first != 1 {
		t.Fatalf("transaction's first batch at %d, want 1", first)
	}
	tp.expectLSO(1)
	if !tp.p.Txns().OpenFor(pid, 0) || tp.p.Txns().OpenFor(pid, 1) {
		t.Fatalf("published open transactions %v", tp.p.Txns().Open)
	}
	// Later batches of the open transaction need no verification.
	tp.ok(EncodeProduce(txnBatch("t", 1, pid, 0, 2)))
	// Not transactional while a transaction is open.
	tp.refused(EncodeProduce(idempotentBatch("x", 1, pid, 0, 3)), kerr.InvalidTxnState)
	tp.ok(EncodeProduce(idempotentBatch("plain", 1, 99, 0, 1)))
	tp.expectLSO(1)

	abortAt := tp.ok(EncodeProduce(marker(pid, 0, false, 3)))
	tp.expectLSO(abortAt + 1)
	want := []AbortedTxn{{ProducerID: pid, FirstOffset: 1, LastOffset: abortAt}}
	if got := tp.p.Txns().Aborted; !reflect.DeepEqual(got, want) {
		t.Fatalf("aborted index %v, want %v", got, want)
	}
	if len(tp.p.Txns().Open) != 0 {
		t.Fatalf("open transactions after the abort: %v", tp.p.Txns().Open)
	}
	// The next transaction starts verified again, at the next sequence.
	tp.refused(EncodeProduce(txnBatch("u", 1, pid, 0, 3)), kerr.InvalidTxnState)
	next := tp.ok(EncodeVerifiedProduce(txnBatch("u", 1, pid, 0, 3), tp.p.TxnGuard()))
	tp.expectLSO(next)
	tp.ok(EncodeProduce(marker(pid, 0, true, 3)))
	tp.expectLSO(tp.p.View().HighWatermark())
	if got := tp.p.Txns().Aborted; !reflect.DeepEqual(got, want) {
		t.Fatalf("aborted index after a commit %v, want %v", got, want)
	}
	// A marker for a producer with nothing open is written, harmless.
	tp.ok(EncodeProduce(marker(pid, 0, false, 3)))
	tp.ok(EncodeProduce(marker(1234, 0, true, 0)))
	if got := tp.p.Txns().Aborted; !reflect.DeepEqual(got, want) {
		t.Fatalf("aborted index after empty markers %v, want %v", got, want)
	}

	// What a read_committed fetch reports.
	v := tp.p.Txns()
	for _, c := range []struct {
		from, upper int64
		n           int
	}{{0, 1, 0}, {0, 2, 1}, {abortAt, abortAt + 1, 1}, {abortAt + 1, 100, 0}, {2, 3, 1}} {
		if got := v.AbortedIn(c.from, c.upper); len(got) != c.n {
			t.Errorf("AbortedIn(%d, %d) = %v, want %d entries", c.from, c.upper, got, c.n)
		}
	}
}

// Markers are fenced as Kafka's ProducerAppendInfo fences them; a marker
// with a newer producer epoch (the coordinator's bump on a timeout) is
// taken, fences the old epoch and restarts the sequences.
func TestTxnMarkerFencing(t *testing.T) {
	tp := openTxnPartition(t)
	const pid = 41
	tp.ok(EncodeVerifiedProduce(txnBatch("t", 1, pid, 5, 0), tp.p.TxnGuard()))
	tp.refused(EncodeProduce(marker(pid, 4, false, 2)), kerr.InvalidProducerEpoch)
	tp.ok(EncodeProduce(marker(pid, 5, true, 2)))
	tp.ok(EncodeVerifiedProduce(txnBatch("t", 1, pid, 5, 1), tp.p.TxnGuard()))
	tp.refused(EncodeProduce(marker(pid, 5, true, 1)), kerr.TransactionCoordinatorFenced)
	if len(tp.p.Txns().Open) != 1 {
		t.Fatal("a fenced marker closed the transaction")
	}
	// Aborted on timeout by a coordinator that bumped the epoch.
	at := tp.ok(EncodeProduce(marker(pid, 6, false, 3)))
	if a := tp.p.Txns().Aborted; len(a) != 1 || a[0].LastOffset != at {
		t.Fatalf("aborted index %v", a)
	}
	// The old epoch is fenced; the new one starts at sequence 0.
	tp.refused(EncodeVerifiedProduce(txnBatch("t", 1, pid, 5, 2), tp.p.TxnGuard()), kerr.InvalidProducerEpoch)
	tp.refused(EncodeVerifiedProduce(txnBatch("t", 1, pid, 6, 2), tp.p.TxnGuard()), kerr.OutOfOrderSequenceNumber)
	tp.ok(EncodeVerifiedProduce(txnBatch("t", 1, pid, 6, 0), tp.p.TxnGuard()))
	ps := tp.p.Producers()
	if len(ps) != 1 || ps[0].Epoch != 6 || ps[0].CoordinatorEpoch != 3 || ps[0].LastSequence != 0 || ps[0].TxnStartOffset != at+1 {
		t.Fatalf("producers %+v", ps)
	}
}

// The broker's own transactional writes (the group coordinator's, no
// sequence) need no verification and have only their epoch checked.
func TestTxnBrokerWrites(t *testing.T) {
	tp := openTxnPartition(t)
	const pid = 42
	recs := []protocol.Record{{Key: []byte("k"), Value: []byte("v")}}
	first := tp.ok(EncodeProduce(protocol.BuildTransactionalBatch(pid, 1, recs, 1)))
	tp.ok(EncodeProduce(protocol.BuildTransactionalBatch(pid, 1, recs, 1)))
	tp.expectLSO(first)
	tp.refused(EncodeProduce(protocol.BuildTransactionalBatch(pid, 0, recs, 1)), kerr.InvalidProducerEpoch)
	tp.ok(EncodeProduce(marker(pid, 1, true, 0)))
	tp.expectLSO(tp.p.View().HighWatermark())
	if ps := tp.p.Producers(); len(ps) != 1 || ps[0].LastSequence != -1 {
		t.Fatalf("producers %+v: a write without a sequence left one", ps)
	}
}

// The leader's speculation counts its own in-flight proposals: a second
// batch of a transaction prepared before the first applied continues it.
func TestTxnSpeculation(t *testing.T) {
	tp := openTxnPartition(t)
	p := tp.p
	p.Lead(true)
	if _, v, ok := p.Prepare(EncodeVerifiedProduce(txnBatch("a", 1, 43, 0, 0), p.TxnGuard()), 2, time.Now()); !ok {
		t.Fatalf("first batch refused: %v", v)
	}
	if _, v, ok := p.Prepare(EncodeProduce(txnBatch("a", 1, 43, 0, 1)), 2, time.Now()); !ok {
		t.Fatalf("second batch of the in-flight transaction refused: %v", v)
	}
	if _, v, ok := p.Prepare(EncodeProduce(idempotentBatch("a", 1, 43, 0, 2)), 2, time.Now()); ok || v.(*ProduceResult).Err != kerr.InvalidTxnState {
		t.Fatalf("non-transactional batch during the in-flight transaction: %v %v", ok, v)
	}
	if _, v, ok := p.Prepare(EncodeProduce(marker(43, 0, false, 0)), 2, time.Now()); !ok {
		t.Fatalf("marker refused: %v", v)
	}
	if _, v, ok := p.Prepare(EncodeProduce(txnBatch("a", 1, 43, 0, 2)), 2, time.Now()); ok || v.(*ProduceResult).Err != kerr.InvalidTxnState {
		t.Fatalf("unverified batch after the in-flight abort: %v %v", ok, v)
	}
}

// The aborted index and the open transactions survive a checkpoint and a
// reopen from it; retention prunes index entries below the log start.
func TestTxnStateCheckpointed(t *testing.T) {
	tp := openTxnPartition(t)
	tp.ok(EncodeVerifiedProduce(txnBatch("a", 2, 50, 0, 0), tp.p.TxnGuard()))
	abortAt := tp.ok(EncodeProduce(marker(50, 0, false, 1)))
	open := tp.ok(EncodeVerifiedProduce(txnBatch("b", 1, 51, 0, 0), tp.p.TxnGuard()))
	before := *tp.p.Txns()
	commitCheckpoint(t, tp.db, tp.p.Checkpoint(tp.index))
	tp.p.Close(false)
	tp.open()
	if got := *tp.p.Txns(); !reflect.DeepEqual(got, before) {
		t.Fatalf("after reopen %+v, want %+v", got, before)
	}
	tp.expectLSO(open)
	// The producer with an open transaction never expires.
	tp.p.producers.expire(tp.p.clock + (48 * time.Hour).Milliseconds())
	if _, ok := tp.p.producers.m[51]; !ok {
		t.Fatal("a producer with an open transaction expired")
	}
	tp.p.pruneAborted(abortAt)
	if len(tp.p.aborted) != 1 {
		t.Fatal("an entry whose marker is at the log start was pruned")
	}
	tp.p.pruneAborted(abortAt + 1)
	tp.p.publishTxns(false)
	if len(tp.p.Txns().Aborted) != 0 {
		t.Fatalf("entries below the log start kept: %v", tp.p.Txns().Aborted)
	}
}

// A snapshot carries the transaction state to the replica installing it.
func TestTxnStateInSnapshot(t *testing.T) {
	src := openTxnPartition(t)
	src.ok(EncodeVerifiedProduce(txnBatch("a", 2, 60, 0, 0), src.p.TxnGuard()))
	src.ok(EncodeProduce(marker(60, 0, false, 1)))
	src.ok(EncodeVerifiedProduce(txnBatch("b", 1, 61, 0, 0), src.p.TxnGuard()))
	data, body, err := src.p.Snapshot(src.index)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := body(&buf); err != nil {
		t.Fatal(err)
	}
	dst := openTxnPartition(t)
	staged, err := dst.p.StageSnapshot(src.index, data, &buf)
	if err != nil {
		t.Fatal(err)
	}
	b := dst.db.NewBatch()
	if err := dst.p.Restore(src.index, data, staged, b); err != nil {
		t.Fatal(err)
	}
	if err := dst.db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	if err := dst.p.Installed(); err != nil {
		t.Fatal(err)
	}
	if got, want := *dst.p.Txns(), *src.p.Txns(); !reflect.DeepEqual(got, want) {
		t.Fatalf("installed %+v, want %+v", got, want)
	}
	dst.expectLSO(src.lso())
}

// Through the replica: entries after the checkpoint are applied again at
// a restart and rebuild the open transactions and the aborted index.
func TestTxnStateReplayed(t *testing.T) {
	n := newPartitionNode(t, 1<<40, time.Hour)
	n.waitLeaderReady()
	do := func(cmd []byte) *ProduceResult {
		t.Helper()
		tok := fmt.Sprintf("c%p", cmd)
		n.sys.Root.Send(n.pid, &Propose{Data: cmd, ReplyTo: n.rpid, Token: tok})
		return produceResult(t, waitResults(t, n.results, 1)[tok])
	}
	do(EncodeVerifiedProduce(txnBatch("a", 3, 70, 0, 0), n.sm.TxnGuard()))
	abortAt := do(EncodeProduce(marker(70, 0, false, 0))).BaseOffset
	open := do(EncodeVerifiedProduce(txnBatch("b", 1, 71, 0, 0), n.sm.TxnGuard())).BaseOffset
	do(EncodeProduce(testBatch("plain", 2)))
	n.restart()
	n.waitLeaderReady()
	wait.For(t, 10*time.Second, func() error {
		if hw := n.sm.View().HighWatermark(); hw != open+3 {
			return fmt.Errorf("high watermark %d after replay, want %d", hw, open+3)
		}
		return nil
	})
	v := n.sm.Txns()
	if want := []AbortedTxn{{ProducerID: 70, FirstOffset: 0, LastOffset: abortAt}}; !reflect.DeepEqual(v.Aborted, want) {
		t.Fatalf("aborted index after replay %v, want %v", v.Aborted, want)
	}
	if got := v.LastStable(n.sm.View().HighWatermark()); got != open || !v.OpenFor(71, 0) {
		t.Fatalf("LSO %d after replay (open %v), want %d", got, v.Open, open)
	}
	// The replayed open transaction goes on without verification.
	do(EncodeProduce(txnBatch("b", 1, 71, 0, 1)))
}

// Retention that deletes the segments of an aborted transaction drops its
// index entry; a later one stays.
func TestTxnAbortedIndexPrunedByRetention(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, filepath.Join(dir, "db"))
	defer db.Close()
	p, _, err := OpenPartition(PartitionConfig{
		Group: 5, Dir: filepath.Join(dir, "t-0"), DB: db,
		Log:       storage.LogOptions{SegmentBytes: 1200},
		Retention: &RetentionConfig{Ms: -1, Bytes: 2500, CheckEvery: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(false)
	p.Lead(true)
	now := time.Now()
	if err := p.Maintain(now); err != nil {
		t.Fatal(err)
	}
	big := func(seq int32) []byte {
		b := bigBatch(now.UnixMilli())
		binary.BigEndian.PutUint64(b[43:], 80)
		binary.BigEndian.PutUint16(b[51:], 0)
		binary.BigEndian.PutUint32(b[53:], uint32(seq))
		binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|0x10)
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
		return b
	}
	index := uint64(0)
	write := func(cmd []byte) {
		t.Helper()
		index++
		if r := applyAsLeader(t, p, index, 2, cmd, now).(*ProduceResult); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	write(EncodeVerifiedProduce(big(0), p.TxnGuard()))
	write(EncodeProduce(marker(80, 0, false, 0)))
	for range 10 {
		write(EncodeProduce(bigBatch(now.UnixMilli())))
	}
	write(EncodeVerifiedProduce(big(1), p.TxnGuard()))
	write(EncodeProduce(marker(80, 0, false, 0)))
	p.Applied()
	if n := len(p.Txns().Aborted); n != 2 {
		t.Fatalf("%d aborted transactions indexed, want 2", n)
	}
	if err := p.Maintain(now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	start := p.View().LogStartOffset()
	want := []AbortedTxn{{ProducerID: 80, FirstOffset: 12, LastOffset: 13}}
	if got := p.Txns().Aborted; start < 2 || !reflect.DeepEqual(got, want) {
		t.Fatalf("log start %d, aborted index %v; want the first transaction's segments gone and %v", start, got, want)
	}
}

// The verification guard (Kafka's): a verified batch whose check was
// read before a marker for its producer was prepared, or under an
// earlier leadership, is refused with the retriable NOT_ENOUGH_REPLICAS
// (its producer asks the coordinator again) instead of opening a
// transaction the coordinator may have ended; a marker of another
// producer changes nothing.
func TestTxnVerificationGuard(t *testing.T) {
	tp := openTxnPartition(t)
	const pid, other = 90, 91
	tp.ok(EncodeVerifiedProduce(txnBatch("a", 1, pid, 0, 0), tp.p.TxnGuard()))
	stale := tp.p.TxnGuard() // read by a handler before asking the coordinator
	tp.ok(EncodeProduce(marker(pid, 0, false, 0)))
	tp.refused(EncodeVerifiedProduce(txnBatch("late", 1, pid, 0, 1), stale), kerr.NotEnoughReplicas)
	// Asked again after the marker, the answer is current.
	tp.ok(EncodeVerifiedProduce(txnBatch("b", 1, pid, 0, 1), tp.p.TxnGuard()))

	// Another producer's marker does not make pid's check stale.
	tp.ok(EncodeVerifiedProduce(txnBatch("c", 1, other, 0, 0), tp.p.TxnGuard()))
	tp.ok(EncodeProduce(marker(pid, 0, true, 0)))
	g := tp.p.TxnGuard()
	tp.ok(EncodeProduce(marker(other, 0, true, 0)))
	tp.ok(EncodeVerifiedProduce(txnBatch("d", 1, pid, 0, 2), g))

	// A check read under an earlier leadership is stale.
	tp.ok(EncodeProduce(marker(pid, 0, true, 0)))
	g = tp.p.TxnGuard()
	tp.p.Lead(false)
	tp.p.Lead(true)
	tp.refused(EncodeVerifiedProduce(txnBatch("e", 1, pid, 0, 3), g), kerr.NotEnoughReplicas)
	tp.ok(EncodeVerifiedProduce(txnBatch("e", 1, pid, 0, 3), tp.p.TxnGuard()))
}
