package groups

import (
	"sort"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Routing of group requests to group actors. Lock order: handlers hold
// co.mu while they look up (or spawn) a group and send to it, so nothing
// reaches an actor after it was forgotten and poisoned (a message queued
// behind the poison pill would be dropped, and its client would wait
// forever). Group actors never take co.mu on their own goroutine: a send
// blocked on a full mailbox under co.mu always drains.

// Route hands msg to the group's actor, spawning it (and so loading the
// group from the store) if it has none.
func (co *Coordinator) Route(name string, msg any) {
	co.mu.Lock()
	defer co.mu.Unlock()
	if co.closed {
		if call, ok := msg.(*Call); ok {
			call.reply(CallError(call.op, kerr.NotCoordinator))
		}
		return
	}
	ref := co.actors[name]
	if ref == nil {
		p := co.PartitionFor(name)
		// Creating the store of a partition not hosted here is harmless:
		// the actor answers NOT_COORDINATOR.
		s := co.store(p)
		ref = &groupRef{}
		ref.pid = co.sys.Root.Spawn(newGroupProps(co, ref, name, p, s))
		co.actors[name] = ref
	}
	co.sys.Root.Send(ref.pid, msg)
}

// GroupPID is the live actor of group name, nil when it has none: a
// testkit hook, for scripted messages to a group.
func (co *Coordinator) GroupPID(name string) *actor.PID {
	co.mu.Lock()
	defer co.mu.Unlock()
	if ref := co.actors[name]; ref != nil {
		return ref.pid
	}
	return nil
}

// forget removes a retiring actor and poisons it: what was sent before
// is still handled (and rerouted by the actor), nothing comes after.
func (co *Coordinator) forget(name string, ref *groupRef) {
	co.mu.Lock()
	defer co.mu.Unlock()
	if co.actors[name] == ref {
		delete(co.actors, name)
	}
	co.sys.Root.Poison(ref.pid)
}

// stopAll stops every group actor at shutdown; calls they still hold
// are answered NOT_COORDINATOR.
func (co *Coordinator) stopAll() {
	co.mu.Lock()
	co.closed = true
	pids := make([]*actor.PID, 0, len(co.actors))
	for _, ref := range co.actors {
		pids = append(pids, ref.pid)
	}
	co.actors = map[string]*groupRef{}
	co.mu.Unlock()
	var fs []*actor.Future
	for _, pid := range pids {
		fs = append(fs, co.sys.Root.StopFuture(pid))
	}
	for _, f := range fs {
		_ = f.Wait()
	}
}

// CoordinatorErr is the error for a request about group on this node:
// nil when it leads the group's offsets partition and has loaded it.
func (co *Coordinator) CoordinatorErr(group string) *kerr.Error {
	h := co.node.OffsetsReplica(co.PartitionFor(group))
	switch {
	case h == nil, !h.LeaderReady() && !h.Leads():
		// Not here, or a follower here: the client must look the
		// coordinator up again (it retries LOAD_IN_PROGRESS on the same
		// node).
		return kerr.NotCoordinator
	case !h.LeaderReady():
		// Leading, its log not applied yet.
		return kerr.CoordinatorLoadInProgress
	}
	return nil
}

// Listing is what ListGroups reports of a group.
type Listing struct {
	Name         string
	State        State
	ProtocolType string
	Kind         Kind
	known        bool
	// epochs are a consumer group's members and their epochs, which
	// OffsetFetch checks; read-only once published.
	epochs map[string]int32
}

// ListGroups lists the groups of every offsets partition this node leads:
// live actors as they published themselves, the others as the log left them.
func (co *Coordinator) ListGroups() []Listing {
	co.mu.Lock()
	live := map[string]Listing{}
	for name, ref := range co.actors {
		if l := ref.listing.Load(); l != nil {
			live[name] = *l
		}
	}
	co.mu.Unlock()
	stores := co.allStores()
	var out []Listing
	for p, s := range stores {
		if h := co.node.OffsetsReplica(p); h == nil || !h.LeaderReady() {
			continue
		}
		for _, name := range s.names() {
			if l, ok := live[name]; ok {
				delete(live, name)
				if l.known && l.State != StateDead {
					out = append(out, l)
				}
				continue
			}
			l := Listing{Name: name, State: stateEmpty}
			if cg := s.consumerGroup(name); cg != nil {
				l.Kind, l.ProtocolType = groupConsumer, "consumer"
				if len(cg.members) > 0 {
					l.State = stateStable
				}
			} else if md := s.metadata(name); md != nil {
				l.ProtocolType = md.ProtocolType
				if len(md.Members) > 0 {
					l.State = stateStable
				}
			}
			out = append(out, l)
		}
	}
	for _, l := range live {
		// Groups with members but nothing written yet (first generation).
		if l.known && l.State != StateDead && co.CoordinatorErr(l.Name) == nil {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
