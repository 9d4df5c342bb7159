package actors

import (
	"sort"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Routing of group requests to group actors. Lock order: handlers hold
// c.mu while they look up (or spawn) a group and send to it, so nothing
// reaches an actor after it was forgotten and poisoned (a message queued
// behind the poison pill would be dropped, and its client would wait
// forever). Group actors never take c.mu on their own goroutine: a send
// blocked on a full mailbox under c.mu always drains.

// route hands msg to the group's actor, spawning it (and so loading the
// group from the store) if it has none.
func (c *groupCoordinator) route(name string, msg any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		if call, ok := msg.(*groupCall); ok {
			call.reply(callError(call.op, kerr.NotCoordinator))
		}
		return
	}
	ref := c.actors[name]
	if ref == nil {
		p := c.partitionFor(name)
		// Creating the store of a partition not hosted here is harmless:
		// the actor answers NOT_COORDINATOR.
		s := c.store(p)
		ref = &groupRef{}
		ref.pid = c.b.sys.Root.Spawn(newGroupProps(c, ref, name, p, s))
		c.actors[name] = ref
	}
	c.b.sys.Root.Send(ref.pid, msg)
}

// forget removes a retiring actor and poisons it: what was sent before
// is still handled (and rerouted by the actor), nothing comes after.
func (c *groupCoordinator) forget(name string, ref *groupRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.actors[name] == ref {
		delete(c.actors, name)
	}
	c.b.sys.Root.Poison(ref.pid)
}

// stopAll stops every group actor at shutdown; calls they still hold
// are answered NOT_COORDINATOR.
func (c *groupCoordinator) stopAll() {
	c.mu.Lock()
	c.closed = true
	pids := make([]*actor.PID, 0, len(c.actors))
	for _, ref := range c.actors {
		pids = append(pids, ref.pid)
	}
	c.actors = map[string]*groupRef{}
	c.mu.Unlock()
	var fs []*actor.Future
	for _, pid := range pids {
		fs = append(fs, c.b.sys.Root.StopFuture(pid))
	}
	for _, f := range fs {
		_ = f.Wait()
	}
}

// coordinatorErr is the error for a request about group on this node:
// nil when it leads the group's offsets partition and has loaded it.
func (c *groupCoordinator) coordinatorErr(group string) *kerr.Error {
	h := c.b.replicas.get(offsetsTopic, c.partitionFor(group))
	switch {
	case h == nil:
		return kerr.NotCoordinator
	case !h.replica.LeaderReady():
		// Hosted here but not (yet) leading with its log applied. The
		// replica does not tell a follower from a leader still loading;
		// with one voter per partition it is always the latter.
		return kerr.CoordinatorLoadInProgress
	}
	return nil
}

// groupListing is what ListGroups reports of a group.
type groupListing struct {
	name         string
	state        groupState
	protocolType string
	kind         groupKind
	known        bool
	// epochs are a consumer group's members and their epochs, which
	// OffsetFetch checks; read-only once published.
	epochs map[string]int32
}

// listGroups lists the groups of every offsets partition this node leads:
// live actors as they published themselves, the others as the log left them.
func (c *groupCoordinator) listGroups() []groupListing {
	c.mu.Lock()
	live := map[string]groupListing{}
	for name, ref := range c.actors {
		if l := ref.listing.Load(); l != nil {
			live[name] = *l
		}
	}
	c.mu.Unlock()
	stores := c.allStores()
	var out []groupListing
	for p, s := range stores {
		if h := c.b.replicas.get(offsetsTopic, p); h == nil || !h.replica.LeaderReady() {
			continue
		}
		for _, name := range s.names() {
			if l, ok := live[name]; ok {
				delete(live, name)
				if l.known && l.state != stateDead {
					out = append(out, l)
				}
				continue
			}
			l := groupListing{name: name, state: stateEmpty}
			if cg := s.consumerGroup(name); cg != nil {
				l.kind, l.protocolType = groupConsumer, "consumer"
				if len(cg.members) > 0 {
					l.state = stateStable
				}
			} else if md := s.metadata(name); md != nil {
				l.protocolType = md.ProtocolType
				if len(md.Members) > 0 {
					l.state = stateStable
				}
			}
			out = append(out, l)
		}
	}
	for _, l := range live {
		// Groups with members but nothing written yet (first generation).
		if l.known && l.state != stateDead && c.coordinatorErr(l.name) == nil {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
