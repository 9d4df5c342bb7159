package txns

import (
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// The coordinator's tests run against a fake node: no broker, no raft,
// no sockets. Its __transaction_state replicas do what a leader replica
// does with a proposed batch, minus raft: show it to the partition's
// store (the observer) and answer the proposer. Markers are recorded and
// answered per partition with errors the test chooses.

// testStatePartitions keeps the fake small; the mapping of ids to
// partitions is the same function whatever the count.
const testStatePartitions = 3

const testOffsetsPartitions = 4

// fakeNode implements Node.
type fakeNode struct {
	log      *slog.Logger
	md       atomic.Pointer[raftactor.Metadata]
	replicas map[int32]*fakeReplica

	nextPID atomic.Int64
	// pidGate, when set, holds NewProducerID until it is closed.
	pidGate atomic.Pointer[chan struct{}]
	pidErr  atomic.Pointer[error]

	mu sync.Mutex
	// markers are the WriteMarkers calls, in order.
	markers []Markers
	// markerErrs are the answers the next WriteMarkers calls get, per
	// partition, one taken per call (nil once none is left); markerFail
	// answers every call until it is cleared.
	markerErrs map[string]map[int32][]*kerr.Error
	markerFail map[string]map[int32]*kerr.Error
	// markerGate, when set, holds WriteMarkers' answers until closed.
	markerGate chan struct{}

	// panicGroup makes OffsetsPartition panic for that group (on the
	// partition actor: it calls it there).
	panicGroup atomic.Pointer[string]
}

func newFakeNode() *fakeNode {
	n := &fakeNode{log: slog.New(slog.NewTextHandler(io.Discard, nil)), replicas: map[int32]*fakeReplica{},
		markerErrs: map[string]map[int32][]*kerr.Error{}, markerFail: map[string]map[int32]*kerr.Error{}}
	n.nextPID.Store(1000)
	topic := func(name string, partitions int, first uint64) *raftactor.Topic {
		t := &raftactor.Topic{Name: name, Configs: map[string]string{}}
		for i := range partitions {
			t.Groups = append(t.Groups, first+uint64(i))
			t.Replicas = append(t.Replicas, []int32{1})
		}
		return t
	}
	n.md.Store(raftactor.NewMetadata(
		topic("foo", 3, 10),
		topic("bar", 2, 20),
		topic(groups.OffsetsTopic, testOffsetsPartitions, 30),
		topic(StateTopic, testStatePartitions, 40),
	))
	return n
}

func (n *fakeNode) Metadata() *raftactor.Metadata { return n.md.Load() }
func (n *fakeNode) Log() *slog.Logger             { return n.log }

func (n *fakeNode) StateReplica(p int32) Replica {
	if r := n.replicas[p]; r != nil {
		return r
	}
	return nil
}

func (n *fakeNode) NewProducerID() (int64, error) {
	if g := n.pidGate.Load(); g != nil {
		<-*g
	}
	if err := n.pidErr.Load(); err != nil && *err != nil {
		return 0, *err
	}
	return n.nextPID.Add(1), nil
}

func (n *fakeNode) OffsetsPartition(group string) int32 {
	if g := n.panicGroup.Load(); g != nil && *g == group {
		panic("test: OffsetsPartition of " + group)
	}
	return protocol.CoordinatorPartition(group, testOffsetsPartitions)
}

func (n *fakeNode) WriteMarkers(m Markers, done func(map[string]map[int32]*kerr.Error)) {
	n.mu.Lock()
	cp := m
	cp.Partitions = map[string][]int32{}
	res := map[string]map[int32]*kerr.Error{}
	for topic, ps := range m.Partitions {
		cp.Partitions[topic] = append([]int32(nil), ps...)
		res[topic] = map[int32]*kerr.Error{}
		for _, p := range ps {
			var err *kerr.Error
			if q := n.markerErrs[topic][p]; len(q) > 0 {
				err = q[0]
				n.markerErrs[topic][p] = q[1:]
			}
			if e := n.markerFail[topic][p]; e != nil {
				err = e
			}
			res[topic][p] = err
		}
	}
	n.markers = append(n.markers, cp)
	gate := n.markerGate
	n.mu.Unlock()
	// done may run on any goroutine: never the caller's.
	go func() {
		if gate != nil {
			<-gate
		}
		done(res)
	}()
}

// failMarkers queues errs as the answers of topic/p's next marker writes.
func (n *fakeNode) failMarkers(topic string, p int32, errs ...*kerr.Error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.markerErrs[topic] == nil {
		n.markerErrs[topic] = map[int32][]*kerr.Error{}
	}
	n.markerErrs[topic][p] = append(n.markerErrs[topic][p], errs...)
}

// alwaysFailMarkers answers every marker write of topic/p with err (nil
// clears it).
func (n *fakeNode) alwaysFailMarkers(topic string, p int32, err *kerr.Error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.markerFail[topic] == nil {
		n.markerFail[topic] = map[int32]*kerr.Error{}
	}
	n.markerFail[topic][p] = err
}

// holdMarkers holds every marker answer until the returned func runs.
func (n *fakeNode) holdMarkers() (release func()) {
	gate := make(chan struct{})
	n.mu.Lock()
	n.markerGate = gate
	n.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			n.markerGate = nil
			n.mu.Unlock()
			close(gate)
		})
	}
}

// holdProducerIDs holds NewProducerID until the returned func runs.
func (n *fakeNode) holdProducerIDs() (release func()) {
	gate := make(chan struct{})
	n.pidGate.Store(&gate)
	var once sync.Once
	return func() {
		once.Do(func() {
			n.pidGate.Store(nil)
			close(gate)
		})
	}
}

// markerCalls copies the WriteMarkers calls so far.
func (n *fakeNode) markerCalls() []Markers {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Markers(nil), n.markers...)
}

// startReplicas gives node a leading replica (at term) of every
// __transaction_state partition, observed by co's stores.
func (n *fakeNode) startReplicas(sys *actor.ActorSystem, co *Coordinator, term int32) {
	for p := range int32(testStatePartitions) {
		r := &fakeReplica{p: p, store: co.Store(p)}
		r.term.Store(term)
		r.ready.Store(true)
		r.pid = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return r }))
		n.replicas[p] = r
	}
}

// fakeReplica is one __transaction_state partition.
type fakeReplica struct {
	p     int32
	pid   *actor.PID
	store raftactor.BatchObserver
	ready atomic.Bool
	// follower: raft names another node the leader (Leads is false).
	follower atomic.Bool
	term     atomic.Int32

	// failWith answers writes with a ProduceResult carrying this error;
	// failResult answers them with a Result error (not applied).
	failWith   atomic.Pointer[kerr.Error]
	failResult atomic.Pointer[error]
	// stalled: proposals wait (on the actor) until releaseWrites.
	stalled atomic.Bool
	waiting []*raftactor.Propose // on the actor only

	mu   sync.Mutex
	recs []stateRecord // the records applied, in order
}

// stateRecord is one record the replica applied.
type stateRecord struct {
	id string
	v  kmsg.TxnMetadataValue
}

func (r *fakeReplica) PID() *actor.PID   { return r.pid }
func (r *fakeReplica) LeaderReady() bool { return r.ready.Load() }
func (r *fakeReplica) Leads() bool       { return !r.follower.Load() }
func (r *fakeReplica) Term() int32       { return r.term.Load() }

// releaseWrites is the message that lets stalled proposals through;
// with drop, they are answered ErrNotLeader, never applied (the
// leadership was lost with them).
type releaseWrites struct{ drop bool }

func (r *fakeReplica) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *raftactor.Propose:
		if r.stalled.Load() {
			r.waiting = append(r.waiting, m)
			return
		}
		r.propose(ctx, m)
	case releaseWrites:
		r.stalled.Store(false)
		w := r.waiting
		r.waiting = nil
		for _, p := range w {
			if m.drop {
				ctx.Send(p.ReplyTo, &raftactor.Result{Token: p.Token, Then: p.Then, Err: raftactor.ErrNotLeader})
				continue
			}
			r.propose(ctx, p)
		}
	}
}

func (r *fakeReplica) propose(ctx actor.Context, m *raftactor.Propose) {
	res := &raftactor.Result{Token: m.Token, Then: m.Then}
	switch {
	case r.failResult.Load() != nil:
		res.Err = *r.failResult.Load()
	case r.failWith.Load() != nil:
		res.Value = &raftactor.ProduceResult{Err: r.failWith.Load()}
	default:
		b := append([]byte(nil), raftactor.ProduceBatch(m.Data)...)
		recs, err := protocol.Records(b)
		if err != nil {
			res.Value = &raftactor.ProduceResult{Err: kerr.CorruptMessage}
			break
		}
		r.observe(b, recs)
		res.Value = &raftactor.ProduceResult{}
	}
	if m.ReplyTo != nil {
		ctx.Send(m.ReplyTo, res)
	}
}

// observe shows batch to the store, as apply does, and keeps its records.
func (r *fakeReplica) observe(b []byte, recs []protocol.BatchRecord) {
	r.store.ObserveBatch(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range recs {
		var k kmsg.TxnMetadataKey
		if k.ReadFrom(rec.Key) != nil {
			continue
		}
		var v kmsg.TxnMetadataValue
		if rec.Value != nil && v.ReadFrom(append([]byte(nil), rec.Value...)) != nil {
			continue
		}
		r.recs = append(r.recs, stateRecord{id: k.TransactionalID, v: v})
	}
}

// records are the records of id the replica applied, in order.
func (r *fakeReplica) records(id string) []kmsg.TxnMetadataValue {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []kmsg.TxnMetadataValue
	for _, rec := range r.recs {
		if rec.id == id {
			out = append(out, rec.v)
		}
	}
	return out
}
