package testkit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestTxnFranzCommitAbort drives a franz-go transactional producer through
// committed and aborted transactions over three partitions, with plain
// (non-transactional) writes between them. Once no transaction is open
// (last stable offset = high watermark everywhere), a read_committed
// consumer sees exactly the committed and plain records, each once, and a
// read_uncommitted consumer sees the aborted ones too.
func TestTxnFranzCommitAbort(t *testing.T) {
	tg := StartTarget(t)
	requireTransactions(t, tg.Addr())
	const parts = 3
	topic := uniqueName(t, "t")
	CreateTopic(t, tg.Addr(), topic, parts, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	p := newTxnProducer(t, tg.Addr(), uniqueName(t, "txn"))
	plain := NewClient(t, tg.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var committed, aborted []string
	txn := func(tag string, n int, commit bool) {
		t.Helper()
		recs := txnRecords(topic, tag, n, parts)
		runTxn(ctx, t, p, commit, recs...)
		for _, r := range recs {
			if commit {
				committed = append(committed, string(r.Value))
			} else {
				aborted = append(aborted, string(r.Value))
			}
		}
	}
	txn("commit1", 30, true)
	txn("abort2", 20, false)
	recs := txnRecords(topic, "plain", 6, parts)
	if err := plain.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("plain produce: %v", err)
	}
	for _, r := range recs {
		committed = append(committed, string(r.Value))
	}
	txn("commit3", 9, true)
	txn("abort4", 6, false) // the last word in every partition is an abort marker

	cl := rawClient(t, tg.Addr())
	ends := waitStable(t, cl, topic, parts, 30*time.Second)
	var total int64
	for _, e := range ends {
		total += e
	}
	// 71 data records and one marker per partition per transaction.
	if want := int64(len(committed) + len(aborted) + 4*parts); total != want {
		t.Errorf("high watermarks %v sum to %d, want %d (%d records, %d markers)", ends, total, want, len(committed)+len(aborted), 4*parts)
	}
	rc := valuesOf(t, readTopic(t, tg.Addr(), topic, ends, readCommitted))
	sameValues(t, "read_committed", rc, committed)
	ru := valuesOf(t, readTopic(t, tg.Addr(), topic, ends, readUncommitted))
	sameValues(t, "read_uncommitted", ru, append(append([]string(nil), committed...), aborted...))
	t.Logf("read_committed saw %d records, read_uncommitted %d; end offsets %v", len(rc), len(ru), ends)
}

// TestTxnFranzOpenHoldsLSO checks the last stable offset on one partition:
// after a committed transaction it equals the high watermark; an open
// transaction holds it at the transaction's first offset while a plain
// write moves the high watermark past it (ListOffsets read_committed,
// Fetch's LastStableOffset, a read_committed Fetch from there returns
// nothing, a read_uncommitted one everything); a read_committed consumer
// sees nothing past it. Aborting releases it: the Fetch's aborted
// transactions name the producer and the transaction's first offset, and
// a read_committed consumer sees the plain write but none of the aborted
// records, which read_uncommitted still returns.
func TestTxnFranzOpenHoldsLSO(t *testing.T) {
	tg := StartTarget(t)
	requireTransactions(t, tg.Addr())
	topic := uniqueName(t, "t")
	CreateTopic(t, tg.Addr(), topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := rawClient(t, tg.Addr())
	p := newTxnProducer(t, tg.Addr(), uniqueName(t, "txn"))
	plain := NewClient(t, tg.Addr(), kgo.DefaultProduceTopic(topic))

	runTxn(ctx, t, p, true, txnRecords(topic, "committed", 4, 1)...)
	stable := waitStable(t, cl, topic, 1, 30*time.Second)[0]
	if stable != 5 {
		t.Fatalf("after a committed transaction of 4 records: end offset %d, want 5 (4 records and the commit marker)", stable)
	}

	first := openTxn(ctx, t, p, txnRecords(topic, "open", 3, 1)...)
	if first != stable {
		t.Fatalf("the open transaction's first record is at offset %d, want %d", first, stable)
	}
	after, err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("plain-after-open")}).First()
	if err != nil {
		t.Fatalf("plain produce: %v", err)
	}
	hw := after.Offset + 1

	if got := mustLatest(t, cl, topic, 1, readUncommitted)[0]; got != hw {
		t.Errorf("ListOffsets read_uncommitted: %d, want the high watermark %d", got, hw)
	}
	if got := mustLatest(t, cl, topic, 1, readCommitted)[0]; got != first {
		t.Errorf("ListOffsets read_committed with a transaction open from offset %d: %d, want %d", first, got, first)
	}
	fp, batches, err := fetchOnce(ctx, cl, topic, 0, 0, readCommitted)
	if err != nil {
		t.Fatalf("read_committed fetch from 0: %v", err)
	}
	if fp.LastStableOffset != first || fp.HighWatermark != hw {
		t.Errorf("read_committed fetch from 0: last stable offset %d, high watermark %d; want %d and %d", fp.LastStableOffset, fp.HighWatermark, first, hw)
	}
	for _, b := range batches {
		if last := b.FirstOffset + int64(b.LastOffsetDelta); last >= first {
			t.Errorf("read_committed fetch from 0 returned a batch at offsets %d-%d, at or past the last stable offset %d", b.FirstOffset, last, first)
		}
	}
	if _, batches, err = fetchOnce(ctx, cl, topic, 0, first, readCommitted); err != nil {
		t.Fatalf("read_committed fetch from %d: %v", first, err)
	} else if len(batches) != 0 {
		t.Errorf("read_committed fetch from the last stable offset %d returned %d batches, want none", first, len(batches))
	}
	if _, batches, err = fetchOnce(ctx, cl, topic, 0, first, readUncommitted); err != nil {
		t.Fatalf("read_uncommitted fetch from %d: %v", first, err)
	} else if n := countRecords(batches, first); n != 4 {
		t.Errorf("read_uncommitted fetch from %d: %d records, want 4 (3 open, 1 plain)", first, n)
	}
	// A read_committed consumer gets the committed transaction and then
	// nothing more (in the second it is given).
	seen := pollCommitted(t, tg.Addr(), topic, 4, time.Second)
	sameValues(t, "read_committed consumer while the transaction is open", seen, valuesOfRecords(txnRecords(topic, "committed", 4, 1)))

	pid, _, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatalf("ProducerID: %v", err)
	}
	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("abort: %v", err)
	}
	ends := waitStable(t, cl, topic, 1, 30*time.Second)
	if ends[0] != hw+1 {
		t.Errorf("after the abort: end offset %d, want %d (the abort marker after the plain record)", ends[0], hw+1)
	}
	fp, _, err = fetchOnce(ctx, cl, topic, 0, 0, readCommitted)
	if err != nil {
		t.Fatalf("read_committed fetch from 0 after the abort: %v", err)
	}
	found := false
	for _, a := range fp.AbortedTransactions {
		found = found || (a.ProducerID == pid && a.FirstOffset == first)
	}
	if !found || fp.LastStableOffset != ends[0] {
		t.Errorf("read_committed fetch after the abort: aborted transactions %+v, last stable offset %d; want producer %d from offset %d listed, and %d",
			fp.AbortedTransactions, fp.LastStableOffset, pid, first, ends[0])
	}
	want := append(valuesOfRecords(txnRecords(topic, "committed", 4, 1)), "plain-after-open")
	sameValues(t, "read_committed after the abort", valuesOf(t, readTopic(t, tg.Addr(), topic, ends, readCommitted)), want)
	sameValues(t, "read_uncommitted after the abort", valuesOf(t, readTopic(t, tg.Addr(), topic, ends, readUncommitted)),
		append(want, valuesOfRecords(txnRecords(topic, "open", 3, 1))...))
}

// TestTxnTimeoutAbortsAndFences leaves a transaction open past its 2 s
// transaction timeout: the broker must abort it by itself (the last
// stable offset is released, its records invisible to read_committed, the
// Fetch lists it aborted) and fence its producer (EndTxn with the old
// epoch: PRODUCER_FENCED or INVALID_PRODUCER_EPOCH). A new producer with
// the same transactional id then commits.
func TestTxnTimeoutAbortsAndFences(t *testing.T) {
	tg := StartTarget(t)
	requireTransactions(t, tg.Addr())
	topic := uniqueName(t, "t")
	CreateTopic(t, tg.Addr(), topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := rawClient(t, tg.Addr())
	txnID := uniqueName(t, "txn")
	const timeout = 2 * time.Second
	p := newTxnProducer(t, tg.Addr(), txnID, kgo.TransactionTimeout(timeout))

	// The first transaction shows the broker accepts a 2 s timeout
	// (INVALID_TRANSACTION_TIMEOUT would fail InitProducerId here).
	runTxn(ctx, t, p, true, txnRecords(topic, "before", 2, 1)...)
	first := openTxn(ctx, t, p, txnRecords(topic, "left-open", 3, 1)...)
	opened := time.Now()
	pid, epoch, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatalf("ProducerID: %v", err)
	}
	if lso := mustLatest(t, cl, topic, 1, readCommitted)[0]; lso != first && time.Since(opened) < timeout {
		t.Errorf("transaction open from offset %d: last stable offset %d", first, lso)
	}

	// Kafka scans for expired transactions every 10 s
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms).
	ends := waitStable(t, cl, topic, 1, 45*time.Second)
	t.Logf("the broker aborted the transaction %v after its last write (timeout %v)", time.Since(opened).Round(10*time.Millisecond), timeout)
	if ends[0] != first+4 {
		t.Errorf("after the timeout: end offset %d, want %d (3 records and an abort marker)", ends[0], first+4)
	}
	fp, _, err := fetchOnce(ctx, cl, topic, 0, 0, readCommitted)
	if err != nil {
		t.Fatalf("read_committed fetch: %v", err)
	}
	listed := false
	for _, a := range fp.AbortedTransactions {
		listed = listed || (a.ProducerID == pid && a.FirstOffset == first)
	}
	if !listed {
		t.Errorf("read_committed fetch after the timeout: aborted transactions %+v do not list producer %d from offset %d", fp.AbortedTransactions, pid, first)
	}
	before := valuesOfRecords(txnRecords(topic, "before", 2, 1))
	sameValues(t, "read_committed after the timeout", valuesOf(t, readTopic(t, tg.Addr(), topic, ends, readCommitted)), before)

	// The producer was fenced: its old epoch is refused by the
	// coordinator (AddPartitionsToTxn as a client sends it), and
	// committing now fails.
	if code := addPartitionsOldEpoch(ctx, t, tg.Addr(), txnID, pid, epoch, topic); code != kerr.ProducerFenced.Code && code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("AddPartitionsToTxn with the timed-out transaction's producer %d epoch %d: %v; want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", pid, epoch, kerr.ErrorForCode(code))
	}
	err = p.EndTransaction(ctx, kgo.TryCommit)
	switch {
	case err == nil:
		t.Errorf("EndTransaction(commit) of the timed-out transaction (producer %d epoch %d) succeeded; want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", pid, epoch)
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch):
		t.Logf("EndTransaction(commit) after the timeout: %v", err)
	case errors.Is(err, kerr.InvalidTxnState) && maxVersion(t, tg.Addr(), kmsg.EndTxn.Int16()) >= 5:
		// EndTxn v5 (KIP-890 part 2) takes a request one epoch behind as
		// a retry of an EndTxn that bumped the epoch, and a commit
		// "retry" of an aborted transaction is INVALID_TXN_STATE.
		t.Logf("EndTransaction(commit) after the timeout (EndTxn v5, KIP-890 part 2): %v", err)
	default:
		t.Errorf("EndTransaction(commit) of the timed-out transaction: %v; want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	sameValues(t, "read_committed after the fenced commit", valuesOf(t, readTopic(t, tg.Addr(), topic, waitStable(t, cl, topic, 1, 30*time.Second), readCommitted)), before)

	// Nothing is left hanging: the transactional id works again.
	p2 := newTxnProducer(t, tg.Addr(), txnID, kgo.TransactionTimeout(30*time.Second))
	runTxn(ctx, t, p2, true, txnRecords(topic, "after", 2, 1)...)
	ends = waitStable(t, cl, topic, 1, 30*time.Second)
	sameValues(t, "read_committed after a new producer's commit", valuesOf(t, readTopic(t, tg.Addr(), topic, ends, readCommitted)),
		append(before, valuesOfRecords(txnRecords(topic, "after", 2, 1))...))
}

// pollCommitted runs a read_committed consumer on partition 0 of topic
// from offset 0 until it has received want data records (within 30 s),
// then for quiet more, and returns the data values it received.
func pollCommitted(t testing.TB, addr, topic string, want int, quiet time.Duration) []string {
	t.Helper()
	cl := NewClient(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	defer cl.Close()
	var out []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var quietCtx context.Context
	for {
		pctx := ctx
		if len(out) >= want {
			if quietCtx == nil {
				var qcancel context.CancelFunc
				quietCtx, qcancel = context.WithTimeout(ctx, quiet)
				defer qcancel()
			}
			pctx = quietCtx
		}
		fs := cl.PollFetches(pctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
		if quietCtx != nil && quietCtx.Err() != nil {
			return out
		}
		if ctx.Err() != nil {
			t.Fatalf("read_committed consumer of %s: %d of %d records within 30 s: %v", topic, len(out), want, out)
		}
	}
}

func valuesOfRecords(rs []*kgo.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	return out
}

// countRecords is how many records the batches hold at or past offset,
// control batches left out.
func countRecords(batches []kmsg.RecordBatch, from int64) int {
	n := 0
	for _, b := range batches {
		if batchIsControl(b) {
			continue
		}
		for o := b.FirstOffset; o <= b.FirstOffset+int64(b.LastOffsetDelta); o++ {
			if o >= from {
				n++
			}
		}
	}
	return n
}

// addPartitionsOldEpoch sends AddPartitionsToTxn v3 (as a producer does)
// for txnID with the given producer id and epoch to its coordinator and
// returns the partition's error code.
func addPartitionsOldEpoch(ctx context.Context, t testing.TB, addr, txnID string, pid int64, epoch int16, topic string) int16 {
	t.Helper()
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(kmsg.AddPartitionsToTxn.Int16(), 3) // v4+ batches transactions, for brokers' verification
	cl := NewClient(t, addr, kgo.MaxVersions(versions))
	return addPartition0(ctx, t, cl, txnID, pid, epoch, topic)
}

// maxVersion is the newest version of API key the broker advertises, -1
// when it does not serve it.
func maxVersion(t testing.TB, addr string, key int16) int16 {
	t.Helper()
	if v, ok := advertisedAPIs(t, addr)[key]; ok {
		return v
	}
	return -1
}
