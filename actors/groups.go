package actors

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// offsetsTopic is Kafka's internal topic of group metadata and committed
// offsets. Group state is only ever changed by records written to it, so
// whoever leads one of its partitions can rebuild that partition's groups
// from the log.
const offsetsTopic = "__consumer_offsets"

// groupCoordinator routes group requests to one actor per group and keeps
// the materialized state of every __consumer_offsets partition hosted here.
type groupCoordinator struct {
	b *Broker
	// storesMu guards stores alone: the replica manager takes it while it
	// holds its own lock, so it must not wait on mu (see group_routing.go).
	storesMu sync.Mutex
	// stores[p] is the state of __consumer_offsets partition p, fed by its
	// replica at apply (and from its segments when it opens).
	stores map[int32]*groupStore
	mu     sync.Mutex // guards actors and closed
	// actors are the live group actors; a group's requests all go through
	// route, so one actor owns each group.
	actors map[string]*groupRef
	closed bool

	// Tunables, fields so tests can shorten them.
	initialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms, kept short
	minSessionTimeout     time.Duration // group.min.session.timeout.ms, lenient for tests
	maxSessionTimeout     time.Duration // group.max.session.timeout.ms
	sweepInterval         time.Duration // offsets.retention.check.interval.ms
	// KIP-848 consumer groups (group_consumer*.go).
	consumerSessionTimeout    time.Duration // group.consumer.session.timeout.ms
	consumerHeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms, short: clients reconcile on heartbeats
}

// groupRef is a live group actor and what ListGroups reports of it,
// published by the actor without taking the coordinator's lock.
type groupRef struct {
	pid     *actor.PID
	listing atomic.Pointer[groupListing]
}

func newGroupCoordinator(b *Broker) *groupCoordinator {
	return &groupCoordinator{
		b: b, stores: map[int32]*groupStore{}, actors: map[string]*groupRef{},
		initialRebalanceDelay: 100 * time.Millisecond,
		minSessionTimeout:     100 * time.Millisecond,
		maxSessionTimeout:     30 * time.Minute,
		sweepInterval:         time.Minute,

		consumerSessionTimeout:    45 * time.Second,
		consumerHeartbeatInterval: time.Second,
	}
}

// allStores copies the map of offsets partitions' states.
func (g *groupCoordinator) allStores() map[int32]*groupStore {
	g.storesMu.Lock()
	defer g.storesMu.Unlock()
	out := make(map[int32]*groupStore, len(g.stores))
	for p, s := range g.stores {
		out[p] = s
	}
	return out
}

// store returns (creating) the state of offsets partition p; the replica
// manager hands it to the partition as its observer.
func (g *groupCoordinator) store(p int32) *groupStore {
	g.storesMu.Lock()
	defer g.storesMu.Unlock()
	s := g.stores[p]
	if s == nil {
		s = newGroupStore()
		g.stores[p] = s
	}
	return s
}

// partitionFor maps a group to its offsets partition as Kafka does:
// abs(javaStringHashCode(group)) % partitions.
func (g *groupCoordinator) partitionFor(group string) int32 {
	return groupPartition(group, g.partitions())
}

// groupPartition is Kafka's Utils.abs(group.hashCode()) % n.
func groupPartition(group string, n int32) int32 {
	var h int32
	for _, r := range group {
		// Java hashes UTF-16 code units.
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -2147483648 {
		h = 0 // Kafka's Utils.abs maps MinValue to 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}

func (g *groupCoordinator) partitions() int32 {
	if t := g.b.controller.Metadata().Topics[offsetsTopic]; t != nil {
		return int32(len(t.Groups))
	}
	return g.b.cfg.OffsetsPartitions
}

// write appends records to the group's offsets partition through raft;
// then runs on the calling actor (ctx) once they are applied (and so
// visible in the store) or failed.
func (g *groupCoordinator) write(ctx actor.Context, group string, recs []protocol.Record, then func(error)) {
	h := g.b.replicas.get(offsetsTopic, g.partitionFor(group))
	if h == nil {
		then(fmt.Errorf("%s partition of group %q is not hosted here", offsetsTopic, group))
		return
	}
	ctx.Send(h.pid, &raftactor.Propose{
		Data:    raftactor.EncodeProduce(protocol.BuildBatch(recs, time.Now().UnixMilli())),
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

// ensureOffsetsTopic creates __consumer_offsets when the cluster has none.
func (b *Broker) ensureOffsetsTopic() error {
	if b.controller.Metadata().Topics[offsetsTopic] != nil {
		return nil
	}
	t := b.newTopic(offsetsTopic, b.cfg.OffsetsPartitions, map[string]string{"cleanup.policy": "compact"})
	f := actor.NewFuture(b.sys, 30*time.Second)
	b.sys.Root.Send(b.controllerPID, &raftactor.Propose{
		Data:    (raftactor.CreateTopicCmd(t)).Encode(),
		ReplyTo: f.PID(),
	})
	v, err := f.Result()
	if err != nil {
		return fmt.Errorf("create %s: %w", offsetsTopic, err)
	}
	res := v.(*raftactor.Result)
	if res.Err != nil {
		return fmt.Errorf("create %s: %w", offsetsTopic, res.Err)
	}
	if cr := res.Value.(*raftactor.ControllerResult); cr.Err != nil && !errors.Is(cr.Err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create %s: %v", offsetsTopic, cr.Err)
	}
	return nil
}
