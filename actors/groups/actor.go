package groups

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// Kind is the membership protocol a group runs. Offsets and the
// actor's life are shared; each kind keeps its own member handling in its
// own files (classic_*.go, consumer_*.go).
type Kind int8

const (
	groupClassic  Kind = iota // JoinGroup/SyncGroup, and simple consumers' offsets
	groupConsumer             // KIP-848 ConsumerGroupHeartbeat
)

func (k Kind) String() string {
	if k == groupConsumer {
		return "consumer"
	}
	return "classic"
}

// State is Kafka's GroupState (classic groups) or ConsumerGroupState
// (consumer groups: Empty, Assigning, Reconciling, Stable); String gives
// the names DescribeGroups, ConsumerGroupDescribe and ListGroups report.
type State int8

const (
	stateEmpty State = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	StateDead
	stateAssigning   // consumer group: a target assignment is being computed
	stateReconciling // consumer group: members are moving to the target
)

func (s State) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Assigning", "Reconciling"}[s]
}

// group is the actor of one group: the only owner of its members,
// generation and timers. Its durable part is rebuilt from the groupStore
// when spawned, and every durable change is a record written through the
// offsets partition before it is acknowledged.
type group struct {
	inFlight  *Call // the call handleCall is working on
	co        *Coordinator
	ref       *groupRef
	name      string
	partition int32
	store     *groupStore
	term      int32 // offsets partition leader epoch the state was loaded at
	ctx       actor.Context

	kind         Kind
	state        State
	stateSince   time.Time
	generation   int32
	protocolType string
	protocol     string // selected protocol; "" when none
	leader       string
	classic      classicGroup
	consumer     consumerGroup

	writeSeq uint64
	writes   map[uint64]func(error) // in flight to the offsets partition
	expireAt time.Time              // an expiry check waiting for writes in flight
	// retired: no longer the coordinator's. Calls that still arrive, and
	// those of a Dead group, wait in stash and are rerouted to a fresh
	// actor when this one stops.
	retired bool
	stash   []*Call
}

func newGroupProps(co *Coordinator, ref *groupRef, name string, partition int32, store *groupStore) *actor.Props {
	g := &group{co: co, ref: ref, name: name, partition: partition, store: store, writes: map[uint64]func(error){}}
	return actor.PropsFromProducer(func() actor.Actor { return g },
		// Bounded at the source: senders are connections, each with at
		// most maxInFlight requests, and the offsets replica answering
		// writes. A bounded queue would block them (and the router's lock,
		// and that replica's raft loop) when full.
		actor.WithMailbox(actor.Unbounded()),
		// Spawned from the root, so its guardian (not WithSupervisor, which
		// is for children) decides: stop, never restart over half-changed
		// state. Stopping answers what it held; the next call reloads it.
		actor.WithGuardian(stopOnPanic))
}

// stopOnPanic stops a panicking group actor instead of restarting it.
var stopOnPanic = actor.NewOneForOneStrategy(0, 10*time.Second, func(reason any) actor.Directive {
	return actor.StopDirective
})

func (g *group) Receive(ctx actor.Context) {
	g.ctx = ctx
	switch m := ctx.Message().(type) {
	case *actor.Started:
		g.load()
		g.publish()
		return // a fresh actor always has its first call queued: no retiring yet
	case *Call:
		if g.retired || g.state == StateDead {
			g.stash = append(g.stash, m)
			return
		}
		if !g.checkCoordinator(m) {
			return
		}
		g.inFlight = m // answered by stopping if handleCall panics
		g.handleCall(m)
		g.inFlight = nil
	case *raftactor.Result:
		m.Run()
	case *expireOp:
		if !g.retired {
			g.expire(m.now)
		}
	case *actor.Stopping:
		g.stopping()
		return
	case *actor.Stopped, *actor.Restarting:
		return
	default:
		if !g.retired && !g.consumerTimer(m) {
			g.classicTimer(m)
		}
	}
	if !g.retired {
		g.publish()
		g.maybeRetire()
	}
}

func (g *group) handleCall(m *Call) {
	if g.classicCallOnConsumer(m) {
		return
	}
	switch op := m.op.(type) {
	case *kmsg.JoinGroupRequest:
		g.handleJoin(m, op)
	case *kmsg.SyncGroupRequest:
		g.handleSync(m, op)
	case *kmsg.HeartbeatRequest:
		g.handleHeartbeat(m, op)
	case *kmsg.LeaveGroupRequest:
		g.handleLeave(m, op)
	case *kmsg.OffsetCommitRequest:
		g.handleOffsetCommit(m, op)
	case *kmsg.TxnOffsetCommitRequest:
		g.handleTxnOffsetCommit(m, op)
	case *kmsg.OffsetDeleteRequest:
		g.handleOffsetDelete(m, op)
	case *kmsg.ConsumerGroupHeartbeatRequest:
		g.handleConsumerHeartbeat(m, op)
	case *DescribeOp:
		m.reply(g.describe())
	case *ConsumerDescribeOp:
		m.reply(g.consumerDescribe())
	case *DeleteOp:
		g.handleDelete(m)
	}
}

// load rebuilds the durable part from the partition's records.
func (g *group) load() {
	g.kind = groupClassic
	g.state, g.stateSince = stateEmpty, time.Now()
	if h := g.co.node.OffsetsReplica(g.partition); h != nil {
		g.term = h.Term()
	}
	g.classic.init()
	g.consumer.init()
	md := g.store.metadata(g.name)
	if md == nil {
		return
	}
	g.generation, g.protocolType = md.Generation, md.ProtocolType
	if md.Protocol != nil {
		g.protocol = *md.Protocol
	}
	if md.Leader != nil {
		g.leader = *md.Leader
	}
	if md.CurrentStateTimestamp > 0 {
		g.stateSince = time.UnixMilli(md.CurrentStateTimestamp)
	}
	g.loadClassicMembers(md)
}

// checkCoordinator answers m and unloads the group when this node no
// longer leads its offsets partition; a new term reloads it from the log.
func (g *group) checkCoordinator(m *Call) bool {
	h := g.co.node.OffsetsReplica(g.partition)
	switch {
	case h == nil || !h.LeaderReady():
		m.reply(CallError(m.op, kerr.NotCoordinator))
		g.retire()
		return false
	case h.Term() != g.term:
		g.stash = append(g.stash, m)
		g.retire()
		return false
	}
	return true
}

// known reports whether the group exists as Kafka sees it: members, or
// records in the log.
func (g *group) known() bool {
	return len(g.classic.members) > 0 || len(g.consumer.members) > 0 || g.generation > 0 || g.store.has(g.name)
}

func (g *group) setState(s State) {
	g.state, g.stateSince = s, time.Now()
}

// maybeRetire lets go of a group that holds nothing, so looking up
// unknown groups does not leave actors behind.
func (g *group) maybeRetire() {
	if g.state == stateEmpty && len(g.writes) == 0 && !g.classic.busy() && !g.known() {
		g.retire()
	}
}

// retire removes the group from the coordinator and stops it once the
// messages already queued are handled. The coordinator's lock is taken off
// the actor's goroutine (see routing.go).
func (g *group) retire() {
	if g.retired {
		return
	}
	g.retired = true
	go g.co.forget(g.name, g.ref)
}

// stopping answers everything the group holds. Stashed calls go to a
// fresh actor, once this one is surely forgotten.
func (g *group) stopping() {
	g.retired = true
	if m := g.inFlight; m != nil {
		// The call being handled when the actor panicked: answer it, or
		// its connection's later responses would wait forever.
		g.inFlight = nil
		m.reply(CallError(m.op, kerr.UnknownServerError))
	}
	g.classic.stopTimers()
	g.consumer.stopTimers()
	g.classic.failWaiting(kerr.NotCoordinator)
	for id, then := range g.writes {
		delete(g.writes, id)
		then(raftactor.ErrStopped)
	}
	stash := g.stash
	g.stash = nil
	go func() {
		g.co.forget(g.name, g.ref)
		for _, m := range stash {
			g.co.Route(g.name, m)
		}
	}()
}

func (g *group) publish() {
	g.ref.listing.Store(&Listing{
		Name: g.name, State: g.state, ProtocolType: g.protocolType, Kind: g.kind, known: g.known(),
		epochs: g.consumerEpochs(),
	})
}

// write appends recs to the group's offsets partition; then runs on this
// actor once they are applied, or with the error. Writes still in flight
// when the actor stops are failed, so no request waits forever.
func (g *group) write(recs []protocol.Record, then func(error)) {
	g.writeBatch(protocol.BuildBatch(recs, time.Now().UnixMilli()), then)
}

// writeBatch is write for a batch already built: TxnOffsetCommit's
// transactional one.
func (g *group) writeBatch(batch []byte, then func(error)) {
	g.writeSeq++
	id := g.writeSeq
	g.writes[id] = then
	g.co.writeBatch(g.ctx, g.name, batch, func(err error) {
		if then, ok := g.writes[id]; ok {
			delete(g.writes, id)
			then(err)
		}
		if len(g.writes) == 0 && !g.expireAt.IsZero() && !g.retired {
			now := g.expireAt
			g.expireAt = time.Time{}
			g.expire(now)
		}
	})
}

// after sends msg to the group once d has passed.
func (g *group) after(d time.Duration, msg any) *time.Timer {
	root, self := g.ctx.ActorSystem().Root, g.ctx.Self()
	return time.AfterFunc(d, func() { root.Send(self, msg) })
}

// writeError maps a failed write of group records to the error Kafka's
// coordinator returns for it.
func writeError(err error) *kerr.Error {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		switch ke {
		case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.RequestTimedOut:
			return kerr.CoordinatorNotAvailable
		case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
			return kerr.NotCoordinator
		case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
			return kerr.InvalidCommitOffsetSize
		}
		return kerr.UnknownServerError
	case errors.Is(err, raftactor.ErrNotLeader), errors.Is(err, raftactor.ErrStopped):
		return kerr.NotCoordinator
	}
	return kerr.NotCoordinator // not hosted here any more
}
