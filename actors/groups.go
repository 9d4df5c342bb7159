package actors

import (
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

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
	b  *Broker
	mu sync.Mutex
	// stores[p] is the state of __consumer_offsets partition p, fed by its
	// replica at apply (and from its segments when it opens).
	stores map[int32]*groupStore
	actors map[string]*actor.PID
}

func newGroupCoordinator(b *Broker) *groupCoordinator {
	return &groupCoordinator{b: b, stores: map[int32]*groupStore{}, actors: map[string]*actor.PID{}}
}

// store returns (creating) the state of offsets partition p; the replica
// manager hands it to the partition as its observer.
func (g *groupCoordinator) store(p int32) *groupStore {
	g.mu.Lock()
	defer g.mu.Unlock()
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
	n := g.partitions()
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
		Token: func(v any, err error) {
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
		Data:    (&raftactor.ControllerCmd{Op: "create_topic", Topic: t}).Encode(),
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
	if cr := res.Value.(*raftactor.ControllerResult); cr.Err != nil && cr.Err.Code != 36 { // TOPIC_ALREADY_EXISTS
		return fmt.Errorf("create %s: %v", offsetsTopic, cr.Err)
	}
	return nil
}
