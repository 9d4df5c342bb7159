package groups

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// OffsetsTopic is Kafka's internal topic of group metadata and committed
// offsets. Group state is only ever changed by records written to it, so
// whoever leads one of its partitions can rebuild that partition's groups
// from the log.
const OffsetsTopic = "__consumer_offsets"

// Coordinator routes group requests to one actor per group and keeps
// the materialized state of every __consumer_offsets partition hosted here.
type Coordinator struct {
	sys  *actor.ActorSystem
	node Node
	cfg  Config
	// storesMu guards stores alone: the replica manager takes it while it
	// holds its own lock, so it must not wait on mu (see routing.go).
	storesMu sync.Mutex
	// stores[p] is the state of __consumer_offsets partition p, fed by its
	// replica at apply (and from its segments when it opens).
	stores map[int32]*groupStore
	mu     sync.Mutex // guards actors and closed
	// actors are the live group actors; a group's requests all go through
	// route, so one actor owns each group.
	actors map[string]*groupRef
	closed bool

	stop     chan struct{} // closed by Stop: ends the expiry sweep
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// groupRef is a live group actor and what ListGroups reports of it,
// published by the actor without taking the coordinator's lock.
type groupRef struct {
	pid     *actor.PID
	listing atomic.Pointer[Listing]
}

// New makes the coordinator of node's groups; zero fields of cfg take
// their defaults. Group actors are spawned on sys. Start runs its sweep.
func New(sys *actor.ActorSystem, node Node, cfg Config) *Coordinator {
	return &Coordinator{
		sys: sys, node: node, cfg: cfg.withDefaults(),
		stores: map[int32]*groupStore{}, actors: map[string]*groupRef{},
		stop: make(chan struct{}),
	}
}

// Start runs the offset expiry sweep until Stop.
func (co *Coordinator) Start() {
	co.wg.Add(1)
	go co.sweepLoop()
}

// Stop ends the sweep and stops every group actor; calls they still hold
// are answered NOT_COORDINATOR. Safe without Start, and more than once.
func (co *Coordinator) Stop() {
	co.stopOnce.Do(func() { close(co.stop) })
	co.wg.Wait()
	co.stopAll()
}

// Store is the state of offsets partition p (created on first use): the
// replica manager hands it to the partition as its observer, which feeds
// it every batch at apply and at open.
func (co *Coordinator) Store(p int32) raftactor.BatchObserver { return co.store(p) }

// allStores copies the map of offsets partitions' states.
func (co *Coordinator) allStores() map[int32]*groupStore {
	co.storesMu.Lock()
	defer co.storesMu.Unlock()
	out := make(map[int32]*groupStore, len(co.stores))
	for p, s := range co.stores {
		out[p] = s
	}
	return out
}

// store returns (creating) the state of offsets partition p; the replica
// manager hands it to the partition as its observer.
func (co *Coordinator) store(p int32) *groupStore {
	co.storesMu.Lock()
	defer co.storesMu.Unlock()
	s := co.stores[p]
	if s == nil {
		s = newGroupStore()
		co.stores[p] = s
	}
	return s
}

// PartitionFor maps a group to its offsets partition as Kafka does:
// abs(javaStringHashCode(group)) % partitions.
func (co *Coordinator) PartitionFor(group string) int32 {
	return protocol.CoordinatorPartition(group, co.partitions())
}

func (co *Coordinator) partitions() int32 {
	if t := co.node.Metadata().Topics[OffsetsTopic]; t != nil {
		return int32(len(t.Groups))
	}
	return co.cfg.OffsetsPartitions
}

// writeBatch appends a batch to the group's offsets partition through
// raft; then runs on the calling actor (ctx) once it is applied (and so
// visible in the store) or failed.
func (co *Coordinator) writeBatch(ctx actor.Context, group string, batch []byte, then func(error)) {
	h := co.node.OffsetsReplica(co.PartitionFor(group))
	if h == nil {
		then(fmt.Errorf("%s partition of group %q is not hosted here", OffsetsTopic, group))
		return
	}
	ctx.Send(h.PID(), &raftactor.Propose{
		Data:    raftactor.EncodeProduce(batch),
		ReplyTo: ctx.Self(),
		Then: func(v any, err error) {
			if err == nil {
				if res := v.(*raftactor.ProduceResult); res.Err != nil {
					err = res.Err
				}
			}
			then(err)
		},
	})
}
