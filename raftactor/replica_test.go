package raftactor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/storage"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

const testGroup uint64 = 5

// partitionNode is one node hosting one single-voter partition replica,
// spawned as the broker does (OpenPartition, NewReplica, Props), without
// sockets. Restarting it keeps the directory and reopens the DB from disk.
type partitionNode struct {
	t       *testing.T
	dir     string
	cpBytes int64
	cpEvery time.Duration

	db  *storage.DB
	sys *actor.ActorSystem
	r   *Replica
	sm  *Partition
	pid *actor.PID

	results <-chan *Result
	rpid    *actor.PID
	running bool

	mu       sync.Mutex
	hwAtAck  map[any]int64 // high watermark seen when each result arrived
	ackTerms map[any]int32
}

func newPartitionNode(t *testing.T, cpBytes int64, cpEvery time.Duration) *partitionNode {
	n := &partitionNode{t: t, dir: t.TempDir(), cpBytes: cpBytes, cpEvery: cpEvery}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *partitionNode) start() {
	t := n.t
	t.Helper()
	n.db = openDB(t, filepath.Join(n.dir, "db"))
	sm, applied, err := OpenPartition(PartitionConfig{
		Group:           testGroup,
		Dir:             filepath.Join(n.dir, "partitions", "t-0"),
		DB:              n.db,
		CheckpointBytes: n.cpBytes,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReplica(Config{
		Group: testGroup, NodeID: 1, Voters: []uint64{1}, DB: n.db, SM: sm, Applied: applied,
		Log: quietLogger(), CheckpointEvery: n.cpEvery,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.sm, n.r = sm, r
	n.sys = newSystem()
	n.hwAtAck, n.ackTerms = map[any]int64{}, map[any]int32{}
	n.rpid, n.results = spawnCollector(n.sys, func(res *Result) {
		// Runs on the collector as each answer arrives: what a client
		// could read right after its acknowledgement.
		n.mu.Lock()
		n.hwAtAck[res.Token] = sm.View().HighWatermark()
		n.ackTerms[res.Token] = r.Term()
		n.mu.Unlock()
	})
	n.pid = n.sys.Root.Spawn(r.Props())
	n.running = true
}

// stop stops the replica (closing its files), the actor system and the DB.
func (n *partitionNode) stop() {
	if !n.running {
		return
	}
	n.running = false
	if err := n.sys.Root.StopFuture(n.pid).Wait(); err != nil {
		n.t.Errorf("stop replica: %v", err)
	}
	n.sys.Shutdown()
	if err := n.db.Close(); err != nil {
		n.t.Errorf("close db: %v", err)
	}
	n.db = nil
}

func (n *partitionNode) restart() {
	n.t.Helper()
	n.stop()
	n.start()
}

func (n *partitionNode) propose(token any, batch []byte) {
	n.sys.Root.Send(n.pid, &Propose{Data: EncodeProduce(batch), ReplyTo: n.rpid, Token: token})
}

// produce proposes batch and waits for its result.
func (n *partitionNode) produce(batch []byte) *ProduceResult {
	n.t.Helper()
	tok := fmt.Sprintf("p%p", batch)
	n.propose(tok, batch)
	return produceResult(n.t, waitResults(n.t, n.results, 1)[tok])
}

func (n *partitionNode) waitLeaderReady() {
	n.t.Helper()
	select {
	case <-n.r.FirstReady():
	case <-time.After(10 * time.Second):
		n.t.Fatal("replica never became leader and ready")
	}
}

// storedBatch is one batch as the read view serves it.
type storedBatch struct {
	h    protocol.BatchHeader
	data []byte
}

// readLog reads every batch of the partition's current view.
func (n *partitionNode) readLog() []storedBatch {
	n.t.Helper()
	v := n.sm.View()
	var out []storedBatch
	for off := v.LogStartOffset(); off < v.HighWatermark(); {
		data, err := v.Read(off, 1<<20)
		if err != nil {
			n.t.Fatal(err)
		}
		for len(data) > 0 {
			h, err := protocol.ParseBatchHeader(data)
			if err != nil {
				n.t.Fatal(err)
			}
			size := int(h.Length) + 12
			out = append(out, storedBatch{h: h, data: data[:size]})
			data = data[size:]
			off = h.BaseOffset + int64(h.LastOffsetDelta) + 1
		}
	}
	return out
}

// checkLog asserts the log holds want, in order, each batch byte for byte
// as produced but for the base offset and partitionLeaderEpoch, which are
// outside the CRC, and returns the stored headers.
func (n *partitionNode) checkLog(want [][]byte) []protocol.BatchHeader {
	n.t.Helper()
	got := n.readLog()
	if len(got) != len(want) {
		n.t.Fatalf("log holds %d batches, want %d", len(got), len(want))
	}
	var hs []protocol.BatchHeader
	var next int64
	for i, b := range got {
		if b.h.BaseOffset != next {
			n.t.Fatalf("batch %d at offset %d, want %d", i, b.h.BaseOffset, next)
		}
		if !bytes.Equal(b.data[16:], want[i][16:]) || !bytes.Equal(b.data[8:12], want[i][8:12]) {
			n.t.Fatalf("batch %d: stored bytes differ from the producer's", i)
		}
		if crc := crc32.Checksum(b.data[21:], crc32.MakeTable(crc32.Castagnoli)); crc != b.h.CRC {
			n.t.Fatalf("batch %d: CRC %08x, header says %08x", i, crc, b.h.CRC)
		}
		recs, err := protocol.Records(b.data)
		if err != nil {
			n.t.Fatal(err)
		}
		wantRecs, _ := protocol.Records(want[i])
		for j, r := range recs {
			if r.Offset != next+int64(j) || !bytes.Equal(r.Value, wantRecs[j].Value) {
				n.t.Fatalf("batch %d record %d: offset %d value %q", i, j, r.Offset, r.Value)
			}
		}
		next += int64(b.h.LastOffsetDelta) + 1
		hs = append(hs, b.h)
	}
	return hs
}

// checkpoint reads the partition's durable checkpoint record.
func (n *partitionNode) checkpoint() (partitionCheckpoint, bool) {
	var cp partitionCheckpoint
	v, err := n.db.Get(storage.GroupMetaKey(testGroup, "checkpoint"))
	if err == storage.ErrNotFound {
		return cp, false
	}
	if err != nil {
		n.t.Fatal(err)
	}
	if err := json.Unmarshal(v, &cp); err != nil {
		n.t.Fatal(err)
	}
	return cp, true
}

// raftLogBounds opens the group's raft log from the DB, with the replica
// stopped, and returns its first and last index.
func raftLogBounds(t *testing.T, db *storage.DB) (uint64, uint64) {
	t.Helper()
	s, err := openLogForTest(db)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	return f, l
}

func TestReplicaProduceReadAndReopen(t *testing.T) {
	n := newPartitionNode(t, 0, 0)

	// A burst sent right after the spawn: the first proposals arrive
	// before the replica leads, and many share a Ready.
	const burst = 200
	var batches [][]byte
	for i := 0; i < burst; i++ {
		b := testBatch(fmt.Sprintf("b%d", i), i%3+1)
		batches = append(batches, b)
		n.propose(i, b)
	}
	res := waitResults(t, n.results, burst)
	var next int64
	for i := 0; i < burst; i++ {
		pr := produceResult(t, res[i])
		if pr.BaseOffset != next {
			t.Fatalf("batch %d at base offset %d, want %d", i, pr.BaseOffset, next)
		}
		next += int64(i%3 + 1)
		// Once acknowledged, a batch is readable: a client that reads
		// right after its ack must find it.
		n.mu.Lock()
		hw := n.hwAtAck[i]
		n.mu.Unlock()
		if hw < next {
			t.Errorf("batch %d acknowledged while the high watermark was %d, below its end %d", i, hw, next)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	n.waitLeaderReady()
	if !n.r.LeaderReady() {
		t.Fatal("not LeaderReady after FirstReady")
	}
	term := n.r.Term()
	if term != 2 {
		t.Fatalf("term %d, want 2 (bootstrap term 1, then one election)", term)
	}
	for i, h := range n.checkLog(batches) {
		if h.PartitionLeaderEpoch != term {
			t.Fatalf("batch %d: partitionLeaderEpoch %d, want the term %d", i, h.PartitionLeaderEpoch, term)
		}
	}
	if got := n.sm.Epochs(); len(got) != 1 || got[0] != (EpochStart{term, 0}) {
		t.Fatalf("epochs %v", got)
	}

	// Restart: no checkpoint was taken (the default is 8 MiB), so the
	// segments reopen empty and the raft log replays every batch.
	n.restart()
	n.waitLeaderReady()
	if v := n.sm.View().HighWatermark(); v != next {
		t.Fatalf("high watermark %d after reopen, want %d", v, next)
	}
	for i, h := range n.checkLog(batches) {
		if h.PartitionLeaderEpoch != term {
			t.Fatalf("batch %d: partitionLeaderEpoch %d after replay, want %d", i, h.PartitionLeaderEpoch, term)
		}
	}
	term2 := n.r.Term()
	if term2 <= term {
		t.Fatalf("term %d after restart, want above %d", term2, term)
	}
	b := testBatch("after", 2)
	batches = append(batches, b)
	if pr := n.produce(b); pr.BaseOffset != next {
		t.Fatalf("batch after reopen at %d, want %d", pr.BaseOffset, next)
	}
	// The batch after reopen becomes visible.
	wait.For(t, 10*time.Second, func() error {
		if hw := n.sm.View().HighWatermark(); hw != next+2 {
			return fmt.Errorf("high watermark %d, want %d", hw, next+2)
		}
		return nil
	})
	hs := n.checkLog(batches)
	if got := hs[len(hs)-1].PartitionLeaderEpoch; got != term2 {
		t.Fatalf("new batch epoch %d, want %d", got, term2)
	}
	if got := n.sm.Epochs(); len(got) != 2 || got[1] != (EpochStart{term2, next}) {
		t.Fatalf("epochs %v, want a second epoch %d starting at %d", got, term2, next)
	}
	if e, off := EndOffsetForEpoch(n.sm.Epochs(), term, n.r.Term(), n.sm.View().HighWatermark()); e != term || off != next {
		t.Fatalf("end of epoch %d: (%d, %d), want (%d, %d)", term, e, off, term, next)
	}
}

func TestReplicaHoldsProposalsUntilLeader(t *testing.T) {
	// With PreVote, a single voter's Campaign only starts an election: the
	// self votes arrive after the Readys that persist them. So a proposal
	// sent right after the spawn finds the replica not yet leading.
	db := openDB(t, t.TempDir())
	defer db.Close()
	r, err := NewReplica(Config{Group: 9, NodeID: 1, Voters: []uint64{1}, DB: db, SM: nopSM{}, Log: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	if st := r.rn.BasicStatus().RaftState; st == raft.StateLeader {
		t.Fatalf("leader right after Campaign: the hold path would not be exercised")
	}

	n := newPartitionNode(t, 0, 0)
	b := testBatch("early", 1)
	n.propose("early", b)
	pr := produceResult(t, waitResults(t, n.results, 1)["early"])
	if pr.BaseOffset != 0 {
		t.Fatalf("held proposal at %d, want 0", pr.BaseOffset)
	}
	// The held batch becomes visible.
	wait.For(t, 10*time.Second, func() error {
		if hw := n.sm.View().HighWatermark(); hw != 1 {
			return fmt.Errorf("high watermark %d, want %d", hw, 1)
		}
		return nil
	})
	n.checkLog([][]byte{b})
}

func TestReplicaRejectsShortCommand(t *testing.T) {
	n := newPartitionNode(t, 0, 0)
	n.waitLeaderReady()
	n.sys.Root.Send(n.pid, &Propose{Data: []byte{1, 2}, ReplyTo: n.rpid, Token: "short"})
	if r := waitResults(t, n.results, 1)["short"]; r.Err == nil {
		t.Fatal("a command shorter than its header was accepted")
	}
	// The refusal leaves the replica serving.
	if pr := n.produce(testBatch("ok", 1)); pr.BaseOffset != 0 {
		t.Fatalf("base offset %d, want 0", pr.BaseOffset)
	}
}

// Checkpoints trim the raft log, and the partition reopens from the
// durable segments plus the raft log after the checkpoint.
func TestReplicaCheckpointTrimAndReopen(t *testing.T) {
	n := newPartitionNode(t, 1, time.Millisecond)
	n.waitLeaderReady()

	const pid = 77
	var batches [][]byte
	var seq int32
	idem := func(tag string, records int) []byte {
		b := idempotentBatch(tag, records, pid, 0, seq)
		seq += int32(records)
		batches = append(batches, b)
		return b
	}
	var offsets []int64
	for i := 0; i < 6; i++ {
		offsets = append(offsets, n.produce(idem(fmt.Sprintf("c%d", i), 2)).BaseOffset)
	}
	// Every Ready applies more than CheckpointBytes; a tick starts the
	// checkpoint the last apply found one already running for.
	wait.For(t, 10*time.Second, func() error {
		n.sys.Root.Send(n.pid, &Tick{})
		cp, ok := n.checkpoint()
		if !ok || cp.Position.NextOffset != 12 {
			return fmt.Errorf("no checkpoint covering every batch yet (have one: %v, next offset %d, want 12)", ok, cp.Position.NextOffset)
		}
		return nil
	})
	cp, _ := n.checkpoint()
	n.stop()
	n.db = openDB(t, filepath.Join(n.dir, "db"))
	first, last := raftLogBounds(t, n.db)
	if first != cp.Index+1 || first <= 2 {
		t.Fatalf("raft log starts at %d (last %d) after a checkpoint at %d: not trimmed", first, last, cp.Index)
	}
	if err := n.db.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen with checkpoints off: the log comes from the segments alone.
	n.cpBytes, n.cpEvery = 1<<40, time.Hour
	n.start()
	n.waitLeaderReady()
	n.checkLog(batches)
	// The producer table came back with the checkpoint: a retry of the
	// last batch is a duplicate.
	if pr := n.produce(batches[5]); pr.BaseOffset != offsets[5] {
		t.Fatalf("retry after reopen at %d, want the original %d", pr.BaseOffset, offsets[5])
	}
	for i := 0; i < 2; i++ {
		offsets = append(offsets, n.produce(idem(fmt.Sprintf("d%d", i), 3)).BaseOffset)
	}
	plain := testBatch("plain", 1)
	batches = append(batches, plain)
	n.produce(plain)
	// The new batches become visible.
	wait.For(t, 10*time.Second, func() error {
		if hw := n.sm.View().HighWatermark(); hw != 19 {
			return fmt.Errorf("high watermark %d, want %d", hw, 19)
		}
		return nil
	})

	// Reopen: segments are kept up to the last batch the raft log names,
	// the view starts at the checkpoint and the raft log after it is
	// replayed, producer state included.
	n.restart()
	n.waitLeaderReady()
	n.checkLog(batches)
	if pr := n.produce(batches[7]); pr.BaseOffset != offsets[7] {
		t.Fatalf("retry of a replayed batch at %d, want the original %d", pr.BaseOffset, offsets[7])
	}
	if pr := n.produce(testBatch("end", 1)); pr.BaseOffset != 19 {
		t.Fatalf("next batch at %d, want 19", pr.BaseOffset)
	}
	n.stop()
	n.db = openDB(t, filepath.Join(n.dir, "db"))
	if f, _ := raftLogBounds(t, n.db); f != first {
		t.Fatalf("raft log first index %d, want %d (no checkpoint since)", f, first)
	}
	if err := n.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// A crash after the raft log persisted entries but before the HardState
// recording their commit leaves entries from the previous incarnation
// beyond the commit index. They commit again after the restart, while new
// proposals are pending: each proposal must get its own result, not that
// of an old entry which happens to carry the same proposal id.
func TestReplicaRestartWithUncommittedTail(t *testing.T) {
	n := newPartitionNode(t, 0, 0)
	var batches [][]byte
	for i := 0; i < 3; i++ {
		b := testBatch(fmt.Sprintf("old%d", i), 2)
		batches = append(batches, b)
		n.produce(b)
	}
	n.stop()

	// Lower the durable commit index below the three produce entries.
	db := openDB(t, filepath.Join(n.dir, "db"))
	s, err := openLogForTest(db)
	if err != nil {
		t.Fatal(err)
	}
	hs, _, _ := s.InitialState()
	_, last := raftLogBounds(t, db)
	if hs.GetCommit() != last {
		t.Fatalf("commit %d, last index %d", hs.GetCommit(), last)
	}
	lowered := &pb.HardState{Term: ptr(hs.GetTerm()), Vote: ptr(hs.GetVote()), Commit: ptr(last - 3)}
	b := db.NewBatch()
	s.SetHardState(b, lowered)
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	n.start()
	for i := 0; i < 3; i++ {
		nb := testBatch(fmt.Sprintf("new%d", i), 1)
		batches = append(batches, nb)
		n.propose(i, nb)
	}
	res := waitResults(t, n.results, 3)
	for i := 0; i < 3; i++ {
		if pr := produceResult(t, res[i]); pr.BaseOffset != int64(6+i) {
			t.Errorf("new proposal %d answered with base offset %d, want %d", i, pr.BaseOffset, 6+i)
		}
	}
	// Every batch becomes visible.
	wait.For(t, 10*time.Second, func() error {
		if hw := n.sm.View().HighWatermark(); hw != 9 {
			return fmt.Errorf("high watermark %d, want %d", hw, 9)
		}
		return nil
	})
	n.checkLog(batches)
}

func ptr[T any](v T) *T { return &v }

// nopSM is a state machine that applies nothing.
type nopSM struct{}

func (nopSM) Apply(index, term uint64, data []byte) any { return nil }
func (nopSM) Applied() bool                             { return false }
func (nopSM) Checkpoint(uint64) Checkpoint              { return nil }
func (nopSM) Close(bool) error                          { return nil }

// openLogForTest opens the test group's raft log outside a replica, for
// its bounds and HardState: external entries read back as zeros.
func openLogForTest(db *storage.DB) (*storage.LogStore, error) {
	return storage.OpenLogStoreWith(db, testGroup, nil, storage.LogStoreOptions{
		Load: func(_ uint64, x storage.External) ([]byte, error) { return make([]byte, x.Len), nil },
	})
}
