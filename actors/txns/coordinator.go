package txns

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// Coordinator routes transactional requests to one actor per
// __transaction_state partition and keeps the materialized state of every
// such partition hosted here.
type Coordinator struct {
	sys  *actor.ActorSystem
	node Node
	cfg  Config

	// storesMu guards stores alone: the replica manager takes it while
	// holding its own lock (as the group coordinator's).
	storesMu sync.Mutex
	stores   map[int32]*txnStore

	mu     sync.Mutex // guards actors and closed
	actors map[int32]*actor.PID
	closed bool

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New makes the coordinator of node's transactions; Start runs its sweep.
func New(sys *actor.ActorSystem, node Node, cfg Config) *Coordinator {
	return &Coordinator{sys: sys, node: node, cfg: cfg.withDefaults(),
		stores: map[int32]*txnStore{}, actors: map[int32]*actor.PID{}, stop: make(chan struct{})}
}

// Start runs the sweep that aborts timed-out transactions and takes
// over partitions newly led here, until Stop.
func (co *Coordinator) Start() {
	co.wg.Add(1)
	go co.sweepLoop()
}

// Stop ends the sweep and the partition actors; calls they still hold
// are answered NOT_COORDINATOR. Safe without Start, and more than once.
func (co *Coordinator) Stop() {
	co.stopOnce.Do(func() { close(co.stop) })
	co.wg.Wait()
	co.mu.Lock()
	co.closed = true
	pids := make([]*actor.PID, 0, len(co.actors))
	for _, pid := range co.actors {
		pids = append(pids, pid)
	}
	co.actors = map[int32]*actor.PID{}
	co.mu.Unlock()
	var fs []*actor.Future
	for _, pid := range pids {
		fs = append(fs, co.sys.Root.StopFuture(pid))
	}
	for _, f := range fs {
		_ = f.Wait()
	}
}

// Store is the state of __transaction_state partition p (created on
// first use): the replica manager hands it to the partition as its
// observer.
func (co *Coordinator) Store(p int32) interface{ ObserveBatch([]byte) } { return co.store(p) }

func (co *Coordinator) store(p int32) *txnStore {
	co.storesMu.Lock()
	defer co.storesMu.Unlock()
	s := co.stores[p]
	if s == nil {
		s = newTxnStore()
		co.stores[p] = s
	}
	return s
}

func (co *Coordinator) allStores() map[int32]*txnStore {
	co.storesMu.Lock()
	defer co.storesMu.Unlock()
	out := make(map[int32]*txnStore, len(co.stores))
	for p, s := range co.stores {
		out[p] = s
	}
	return out
}

// PartitionFor is the __transaction_state partition of a transactional id.
func (co *Coordinator) PartitionFor(id string) int32 {
	return protocol.CoordinatorPartition(id, co.Partitions())
}

// Partitions is how many partitions __transaction_state has (or will
// have, when it is created).
func (co *Coordinator) Partitions() int32 {
	if t := co.node.Metadata().Topics[StateTopic]; t != nil {
		return int32(len(t.Groups))
	}
	return co.cfg.Partitions
}

// MaxTimeout is the longest transaction timeout a producer may ask for.
func (co *Coordinator) MaxTimeout() time.Duration { return co.cfg.MaxTimeout }

// CoordinatorErr is the error for a request about transactional id on
// this node: nil when it leads the id's partition with its log applied.
func (co *Coordinator) CoordinatorErr(id string) *kerr.Error {
	if co.node.Metadata().Topics[StateTopic] == nil {
		return kerr.CoordinatorNotAvailable
	}
	r := co.node.StateReplica(co.PartitionFor(id))
	switch {
	case r == nil, !r.LeaderReady() && !r.Leads():
		// A follower here: the client must look the coordinator up
		// again (it retries LOAD_IN_PROGRESS on the same node).
		return kerr.NotCoordinator
	case !r.LeaderReady():
		return kerr.CoordinatorLoadInProgress
	}
	return nil
}

// Route hands c to the actor of id's partition, spawning it if needed.
func (co *Coordinator) Route(id string, c *Call) {
	co.send(co.PartitionFor(id), c, true)
}

// send delivers msg to partition p's actor; without spawn, only to one
// that exists. A Call is answered NOT_COORDINATOR once stopped.
func (co *Coordinator) send(p int32, msg any, spawn bool) {
	co.mu.Lock()
	defer co.mu.Unlock()
	if co.closed {
		if c, ok := msg.(*Call); ok {
			c.reply(CallError(c.op, kerr.NotCoordinator))
		}
		return
	}
	pid := co.actors[p]
	if pid == nil {
		if !spawn {
			return
		}
		pid = co.sys.Root.Spawn(newPartitionProps(co, p, co.store(p)))
		co.actors[p] = pid
	}
	co.sys.Root.Send(pid, msg)
}

// forget drops partition p's actor pid once it stops, unless another
// took its place.
func (co *Coordinator) forget(p int32, pid *actor.PID) {
	co.mu.Lock()
	defer co.mu.Unlock()
	if cur := co.actors[p]; cur != nil && cur.Equal(pid) {
		delete(co.actors, p)
	}
}

// sweepLoop pokes, every SweepInterval, the actor of every partition led
// here that holds unfinished transactions (spawning it: that is how a new
// leader takes over commits its predecessor left half done, with no
// client asking), and every existing actor, so that those of partitions
// no longer led here unload.
func (co *Coordinator) sweepLoop() {
	defer co.wg.Done()
	tick := time.NewTicker(co.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-co.stop:
			return
		case now := <-tick.C:
			for p, s := range co.allStores() {
				r := co.node.StateReplica(p)
				led := r != nil && r.LeaderReady()
				co.send(p, sweep{now: now}, led && s.unfinished())
			}
		}
	}
}

// sweep is the periodic check of a partition's transactions.
type sweep struct{ now time.Time }
