package groups

import (
	"crypto/rand"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// The coordinator's tests run against a fake node: no broker, no Pebble,
// no sockets. Its offsets replicas do what raftactor.Partition does with
// a proposed batch, minus raft: give it its offsets and leader epoch, show
// it to the partition's store (the observer), keep it, and answer the
// proposer. What they kept outlives the node, so a new node on the same
// offsetsDisk replays it into fresh stores as a reopened partition does.

// offsetsDisk is what survives a restart: the metadata and each offsets
// partition's batches.
type offsetsDisk struct {
	mu      sync.Mutex
	md      *raftactor.Metadata
	batches map[int32][][]byte
	term    int32 // leader epoch of the last node that ran on it
}

// testOffsetsPartitions keeps the fake small; the mapping of groups to
// partitions is the same function whatever the count.
const testOffsetsPartitions = 4

func newOffsetsDisk() *offsetsDisk {
	offsets := &raftactor.Topic{Name: OffsetsTopic, ID: newTestTopicID(), Configs: map[string]string{"cleanup.policy": "compact"}}
	for i := range testOffsetsPartitions {
		offsets.Groups = append(offsets.Groups, uint64(i+1))
		offsets.Replicas = append(offsets.Replicas, []int32{1})
	}
	return &offsetsDisk{md: raftactor.NewMetadata(offsets), batches: map[int32][][]byte{}}
}

func newTestTopicID() (id [16]byte) {
	_, _ = rand.Read(id[:])
	return id
}

// fakeNode implements Node over an offsetsDisk.
type fakeNode struct {
	disk     *offsetsDisk
	log      *slog.Logger
	md       atomic.Pointer[raftactor.Metadata]
	replicas map[int32]*fakeReplica
}

func (n *fakeNode) Metadata() *raftactor.Metadata { return n.md.Load() }
func (n *fakeNode) Log() *slog.Logger             { return n.log }

func (n *fakeNode) OffsetsReplica(p int32) OffsetsReplica {
	if r := n.replicas[p]; r != nil {
		return r
	}
	return nil
}

// createTopic adds a topic as applying create_topic does: new metadata,
// never a change to the current one (consumer groups compare pointers).
func (n *fakeNode) createTopic(name string, partitions int32) [16]byte {
	n.disk.mu.Lock()
	defer n.disk.mu.Unlock()
	t := &raftactor.Topic{Name: name, ID: newTestTopicID(), Configs: map[string]string{}}
	for range partitions {
		t.Groups = append(t.Groups, uint64(len(t.Groups)+100))
		t.Replicas = append(t.Replicas, []int32{1})
	}
	topics := []*raftactor.Topic{t}
	for _, old := range n.disk.md.Topics {
		topics = append(topics, old)
	}
	n.disk.md = raftactor.NewMetadata(topics...)
	n.md.Store(n.disk.md)
	return t.ID
}

// startFakeNode opens every offsets partition of disk: replays its
// batches into co's store, then spawns its replica, leading at a new term.
func startFakeNode(t *testing.T, sys *actor.ActorSystem, disk *offsetsDisk, co func(*fakeNode) *Coordinator) (*fakeNode, *Coordinator) {
	t.Helper()
	n := &fakeNode{disk: disk, log: slog.New(slog.NewTextHandler(io.Discard, nil)), replicas: map[int32]*fakeReplica{}}
	disk.mu.Lock()
	n.md.Store(disk.md)
	disk.term++
	term := disk.term
	disk.mu.Unlock()
	c := co(n)
	for p := range int32(testOffsetsPartitions) {
		r := &fakeReplica{disk: disk, p: p, term: term, store: c.Store(p)}
		disk.mu.Lock()
		for _, b := range disk.batches[p] {
			r.store.ObserveBatch(b)
			r.next += int64(batchRecords(t, b))
		}
		disk.mu.Unlock()
		r.pid = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return r }))
		n.replicas[p] = r
	}
	return n, c
}

// fakeReplica is one offsets partition: always the leader, log applied.
type fakeReplica struct {
	disk  *offsetsDisk
	p     int32
	term  int32
	pid   *actor.PID
	store raftactor.BatchObserver
	next  int64 // the log end offset (touched on the actor only)
}

func (r *fakeReplica) PID() *actor.PID   { return r.pid }
func (r *fakeReplica) LeaderReady() bool { return true }
func (r *fakeReplica) Leads() bool       { return true }
func (r *fakeReplica) Term() int32       { return r.term }

func (r *fakeReplica) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*raftactor.Propose)
	if !ok {
		return
	}
	// The command carries a batch (raftactor.EncodeProduce) whose base
	// offset and epoch are the leader's to set.
	b := append([]byte(nil), raftactor.ProduceBatch(m.Data)...)
	h, err := protocol.ParseBatchHeader(b)
	var v any
	if err != nil {
		v = &raftactor.ProduceResult{Err: kerr.InvalidRequest}
	} else {
		base := r.next
		protocol.SetBaseOffset(b, base)
		protocol.SetPartitionLeaderEpoch(b, r.term)
		r.store.ObserveBatch(b) // before the answer, as at apply
		r.disk.mu.Lock()
		r.disk.batches[r.p] = append(r.disk.batches[r.p], b)
		r.disk.mu.Unlock()
		r.next += int64(h.LastOffsetDelta) + 1
		v = &raftactor.ProduceResult{BaseOffset: base}
	}
	if m.ReplyTo != nil {
		ctx.Send(m.ReplyTo, &raftactor.Result{Token: m.Token, Then: m.Then, Value: v})
	}
}

func batchRecords(t *testing.T, b []byte) int32 {
	h, err := protocol.ParseBatchHeader(b)
	if err != nil {
		t.Fatalf("stored batch: %v", err)
	}
	return h.LastOffsetDelta + 1
}
