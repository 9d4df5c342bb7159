package testkit

// Helpers of the transaction checks (issue 9): a preflight that fails at
// once against a broker without a transaction coordinator (a
// transactional client would otherwise retry COORDINATOR_NOT_AVAILABLE
// for minutes), transactional producers, offsets by isolation level, raw
// fetches, and a reader that returns what a read_committed or
// read_uncommitted consumer sees up to the end of a topic.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// txnAPIs are the API keys a transactional client sends besides the
// producer's (InitProducerId with a transactional id, FindCoordinator
// with key type 1), each at its least version.
var txnAPIs = map[int16]int16{
	24: 0, // AddPartitionsToTxn
	25: 0, // AddOffsetsToTxn
	26: 0, // EndTxn
	28: 0, // TxnOffsetCommit
}

// txnCoordinatorWait is how long a check waits for FindCoordinator (key
// type 1) to name a node: a fresh broker or cluster may still be creating
// or loading __transaction_state, which Kafka answers with
// COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS.
const txnCoordinatorWait = 30 * time.Second

// requireTransactions fails the test at once unless the broker at addr
// (one or several comma-separated seeds) advertises the transaction APIs,
// and after up to txnCoordinatorWait unless FindCoordinator for a
// transactional id names a coordinator. Without it every transactional
// client in the check would retry until the test's own deadline.
func requireTransactions(t testing.TB, addr string) {
	t.Helper()
	if missing := kafkajsMissingAPIs(t, addr, txnAPIs); len(missing) > 0 {
		t.Fatalf("the broker at %s does not serve transactions: ApiVersions lacks %s (issue 9)", addr, strings.Join(missing, ", "))
	}
	cl := NewClient(t, addr)
	defer cl.Close()
	txnCoordinator(t, cl, "testkit-txn-probe")
}

// txnCoordinator is the node FindCoordinator (key type 1) names for
// txnID, asked until it names one or txnCoordinatorWait has passed.
func txnCoordinator(t testing.TB, cl *kgo.Client, txnID string) int32 {
	t.Helper()
	var node int32
	err := wait.Until(context.Background(), txnCoordinatorWait, func() error {
		var err error
		node, err = findTxnCoordinator(cl, txnID)
		return err
	})
	if err != nil {
		t.Fatalf("FindCoordinator (transaction, key %q) named no coordinator within %v: %v", txnID, txnCoordinatorWait, err)
	}
	return node
}

// findTxnCoordinator asks FindCoordinator once, through any broker.
func findTxnCoordinator(cl *kgo.Client, txnID string) (int32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = txnID
	req.CoordinatorKeys = []string{txnID}
	req.CoordinatorType = 1
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, err
	}
	code, node := resp.ErrorCode, resp.NodeID
	if resp.Version >= 4 {
		if len(resp.Coordinators) != 1 {
			return -1, fmt.Errorf("FindCoordinator v%d answered %d coordinators for one key", resp.Version, len(resp.Coordinators))
		}
		code, node = resp.Coordinators[0].ErrorCode, resp.Coordinators[0].NodeID
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return -1, err
	}
	if node < 0 {
		return -1, fmt.Errorf("FindCoordinator named node %d", node)
	}
	return node, nil
}

// newTxnProducer is a transactional kgo client with records placed by
// their Partition field (ManualPartitioner), closed at cleanup. opts come
// last and override the defaults (a 30 s transaction timeout).
func newTxnProducer(t testing.TB, addr, txnID string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(30 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ClientID("testkit-" + txnID),
	}
	return NewClient(t, addr, append(base, opts...)...)
}

// txnRecord names a record a transaction check writes: its value says
// which transaction (or "plain" write) it belongs to and its place.
func txnRecords(topic, tag string, n, partitions int) []*kgo.Record {
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{
			Topic:     topic,
			Partition: int32(i % partitions),
			Value:     fmt.Appendf(nil, "%s-%d", tag, i),
		}
	}
	return rs
}

// runTxn begins a transaction on p, writes recs and commits or aborts it;
// every step within ctx. It fails the test on any error.
func runTxn(ctx context.Context, t testing.TB, p *kgo.Client, commit bool, recs ...*kgo.Record) {
	t.Helper()
	openTxn(ctx, t, p, recs...)
	if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("EndTransaction(commit=%v): %v (context: %v)", commit, err, ctx.Err())
	}
}

// openTxn begins a transaction on p and writes recs within ctx, leaving
// it open; it returns the offset of the first record. It fails the test
// on any error.
func openTxn(ctx context.Context, t testing.TB, p *kgo.Client, recs ...*kgo.Record) int64 {
	t.Helper()
	if err := p.BeginTransaction(); err != nil {
		t.Fatalf("BeginTransaction: %v", err)
	}
	res := p.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("transactional produce of %d records: %v (context: %v)", len(recs), err, ctx.Err())
	}
	return res[0].Record.Offset
}

// addPartition0 sends a client's AddPartitionsToTxn (v0-v3: the client
// must not send v4+, a broker's) that adds topic's partition 0 to
// txnID's transaction at producer pid and epoch, and returns that
// partition's error code. It fails the test on a request error or an
// answer not of that one partition.
func addPartition0(ctx context.Context, t testing.TB, cl *kgo.Client, txnID string, pid int64, epoch int16, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = txnID, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("AddPartitionsToTxn: %v %+v", err, resp)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// isolation is a ListOffsets / Fetch isolation level.
type isolation int8

const (
	readUncommitted isolation = 0
	readCommitted   isolation = 1
)

func (i isolation) String() string {
	if i == readCommitted {
		return "read_committed"
	}
	return "read_uncommitted"
}

// rawClient is a kgo client for hand-built requests that name topics
// (Fetch v12, ListOffsets by name); closed at cleanup.
func rawClient(t testing.TB, addr string) *kgo.Client {
	t.Helper()
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(kmsg.Fetch.Int16(), 12) // v13 names topics by id
	return NewClient(t, addr, kgo.MaxVersions(versions))
}

// latestOffsets asks ListOffsets (timestamp -1) for every partition of
// topic at the given isolation level: the high watermark for
// read_uncommitted, the last stable offset for read_committed. The
// request goes to each partition's leader (kgo splits it).
func latestOffsets(ctx context.Context, cl *kgo.Client, topic string, partitions int32, iso isolation) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	req.IsolationLevel = int8(iso)
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("ListOffsets %s %s/%d: %w", iso, topic, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	if len(out) != int(partitions) {
		return nil, fmt.Errorf("ListOffsets %s %s: %d partitions answered, want %d", iso, topic, len(out), partitions)
	}
	return out, nil
}

// mustLatest is latestOffsets, retried on retriable errors for up to 30 s.
func mustLatest(t testing.TB, cl *kgo.Client, topic string, partitions int32, iso isolation) map[int32]int64 {
	t.Helper()
	var out map[int32]int64
	wait.For(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		out, err = latestOffsets(ctx, cl, topic, partitions, iso)
		return err
	})
	return out
}

// waitStable waits until every partition's last stable offset equals its
// high watermark (no transaction open there: every one was committed or
// aborted and its markers written) and returns the end offsets.
func waitStable(t testing.TB, cl *kgo.Client, topic string, partitions int32, within time.Duration) map[int32]int64 {
	t.Helper()
	var ends map[int32]int64
	start := time.Now()
	wait.For(t, within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hw, err := latestOffsets(ctx, cl, topic, partitions, readUncommitted)
		if err != nil {
			return err
		}
		lso, err := latestOffsets(ctx, cl, topic, partitions, readCommitted)
		if err != nil {
			return err
		}
		for p, h := range hw {
			if lso[p] != h {
				return fmt.Errorf("%s/%d: last stable offset %d below the high watermark %d: a transaction is still open there (%v after the wait began)", topic, p, lso[p], h, time.Since(start).Round(time.Millisecond))
			}
		}
		ends = hw
		return nil
	})
	return ends
}

// readTopic reads every partition of topic from offset 0 up to ends (a
// partition's end is a high watermark that is also its last stable
// offset: waitStable) with a consumer at the given isolation level, and
// returns the data records (control records left out) in the order
// received, per partition. Control records are kept while reading: the
// record just below such an end is always a marker or visible data, so
// the reader knows when it has seen everything.
func readTopic(t testing.TB, addr, topic string, ends map[int32]int64, iso isolation) map[int32][]*kgo.Record {
	t.Helper()
	level := kgo.ReadUncommitted()
	if iso == readCommitted {
		level = kgo.ReadCommitted()
	}
	start := map[int32]kgo.Offset{}
	for p := range ends {
		start[p] = kgo.NewOffset().At(0)
	}
	cl := NewClient(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(level),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	defer cl.Close()
	got := map[int32][]*kgo.Record{}
	next := map[int32]int64{}
	done := func() bool {
		for p, end := range ends {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var lastErr error
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s (%s): timed out at offsets %v of %v (last fetch error: %v)", topic, iso, next, ends, lastErr)
		}
		fs.EachError(func(_ string, p int32, err error) { lastErr = fmt.Errorf("partition %d: %w", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
			if !r.Attrs.IsControl() {
				got[r.Partition] = append(got[r.Partition], r)
			}
		})
	}
	return got
}

// valuesOf is the values of recs, every partition's in offset order,
// partitions in order, with a check that no offset repeats.
func valuesOf(t testing.TB, recs map[int32][]*kgo.Record) []string {
	t.Helper()
	parts := make([]int32, 0, len(recs))
	for p := range recs {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	var out []string
	for _, p := range parts {
		last := int64(-1)
		for _, r := range recs[p] {
			if r.Offset <= last {
				t.Fatalf("partition %d: offset %d received after %d", p, r.Offset, last)
			}
			last = r.Offset
			out = append(out, string(r.Value))
		}
	}
	return out
}

// sameValues fails the test unless got holds exactly the values of want,
// each as many times (order ignored), and says what differs.
func sameValues(t testing.TB, what string, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, v := range want {
		count[v]++
	}
	for _, v := range got {
		count[v]--
	}
	var missing, extra []string
	for v, n := range count {
		switch {
		case n > 0:
			missing = append(missing, fmt.Sprintf("%s×%d", v, n))
		case n < 0:
			extra = append(extra, fmt.Sprintf("%s×%d", v, -n))
		}
	}
	if len(missing)+len(extra) == 0 {
		return
	}
	sort.Strings(missing)
	sort.Strings(extra)
	t.Fatalf("%s: %d values, want %d; missing %s; unexpected or repeated %s", what, len(got), len(want), clip(missing), clip(extra))
}

func clip(vs []string) string {
	if len(vs) > 20 {
		return fmt.Sprintf("%v ... (%d in all)", vs[:20], len(vs))
	}
	return fmt.Sprint(vs)
}

// fetchOnce sends one Fetch (v12, names topics) for topic/partition from
// offset at the given isolation level to the partition's leader, and
// returns that partition's answer with its batches decoded.
func fetchOnce(ctx context.Context, cl *kgo.Client, topic string, partition int32, offset int64, iso isolation) (kmsg.FetchResponseTopicPartition, []kmsg.RecordBatch, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.IsolationLevel = int8(iso)
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// Fetch goes to the partition's leader; kgo's Request sends it to any
	// broker, so ask for the leader first.
	leader, err := leaderOf(ctx, cl, topic, partition)
	if err != nil {
		return kmsg.FetchResponseTopicPartition{}, nil, err
	}
	raw, err := cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return kmsg.FetchResponseTopicPartition{}, nil, err
	}
	resp := raw.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return kmsg.FetchResponseTopicPartition{}, nil, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return kmsg.FetchResponseTopicPartition{}, nil, fmt.Errorf("fetch of %s/%d: %d topics in the answer", topic, partition, len(resp.Topics))
	}
	fp := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(fp.ErrorCode); err != nil {
		return fp, nil, fmt.Errorf("fetch of %s/%d: %w", topic, partition, err)
	}
	batches, err := decodeBatches(fp.RecordBatches)
	return fp, batches, err
}

// leaderOf is the leader Metadata names for topic/partition.
func leaderOf(ctx context.Context, cl *kgo.Client, topic string, partition int32) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition == partition && p.ErrorCode == 0 && p.Leader >= 0 {
				return p.Leader, nil
			}
		}
	}
	return -1, fmt.Errorf("metadata names no leader for %s/%d", topic, partition)
}

// decodeBatches splits a fetch's record bytes into batches; a truncated
// last batch (the fetch's size limit) is dropped, as clients do.
func decodeBatches(b []byte) ([]kmsg.RecordBatch, error) {
	var out []kmsg.RecordBatch
	for len(b) >= 12 {
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:12])))
		if size > len(b) {
			break
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b[:size]); err != nil {
			return nil, fmt.Errorf("decode batch at byte %d: %w", len(b), err)
		}
		out = append(out, rb)
		b = b[size:]
	}
	return out, nil
}

// batchIsControl reports whether a batch is a control batch (a marker).
func batchIsControl(rb kmsg.RecordBatch) bool { return rb.Attributes&0x20 != 0 }

// killableDialer lets a kgo client die abruptly, as its process would:
// kill closes every connection it dialled and refuses new ones, so the
// broker sees the client's connections drop and hears nothing more from
// it (no LeaveGroup, no EndTxn).
type killableDialer struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

var errKilled = errors.New("testkit: client killed")

func (d *killableDialer) DialContext(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil, errKilled
	}
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	d.conns = append(d.conns, c)
	return c, nil
}

func (d *killableDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = true
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// closeDead closes a client whose dialer was killed without waiting for
// the goodbyes it cannot send (LeaveGroup retries until its own timeout):
// at most a few seconds, then it is left to finish in the background.
func closeDead(cl *kgo.Client) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cl.LeaveGroupContext(ctx)
		cl.Close()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}
