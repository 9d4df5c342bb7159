package actors

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

// Testkit hooks: exported ways for testkit's probes and interceptors to
// reach this node's actors and watch what they are sent. The broker never
// calls them itself; they exist so that a test can script messages to a
// partition replica, the controller, a group actor or a connection, and
// await the replies, without a package-internal test.

// ActorSystem is the node's protoactor system, on which a test spawns its
// probes. Testkit hook.
func (b *Broker) ActorSystem() *actor.ActorSystem { return b.sys }

// ReplicaPID is the actor of this node's replica of topic's partition,
// nil when the node hosts none. Testkit hook.
func (b *Broker) ReplicaPID(topic string, partition int32) *actor.PID {
	if h := b.replicas.get(topic, partition); h != nil {
		return h.pid
	}
	return nil
}

// RaftLogTrimmed is the last raft log index this node's replica of
// topic's partition has trimmed (its log starts after it), and whether
// the node hosts one: a leader that trimmed past a follower's match
// must send it a snapshot. Testkit hook.
func (b *Broker) RaftLogTrimmed(topic string, partition int32) (uint64, bool) {
	if h := b.replicas.get(topic, partition); h != nil {
		return h.replica.TrimmedIndex(), true
	}
	return 0, false
}

// ControllerPID is the actor of this node's controller replica (raft
// group 0). Testkit hook.
func (b *Broker) ControllerPID() *actor.PID { return b.controllerPID }

// GroupPID is the actor of consumer group name on this node, spawned on
// demand by the coordinator; nil while the group has no live actor here.
// Testkit hook.
func (b *Broker) GroupPID(name string) *actor.PID { return b.groups.GroupPID(name) }

// GroupPartition is the __consumer_offsets partition that holds group
// name, where its transactions' markers go. Testkit hook.
func (b *Broker) GroupPartition(name string) int32 { return b.groups.PartitionFor(name) }

// ConnPIDs are the actors of the node's open client connections. Testkit
// hook.
func (b *Broker) ConnPIDs() []*actor.PID {
	var out []*actor.PID
	b.openConns.Range(func(_, v any) bool {
		if pid, ok := v.(*actor.PID); ok {
			out = append(out, pid)
		}
		return true
	})
	return out
}

// Verdict is an Interceptor's decision on one message.
type Verdict struct {
	Drop  bool          // the actor never sees it
	Delay time.Duration // it is delivered this much later (ignored when Drop)
}

// Interceptor sees a message sent to an intercepted actor before the
// actor does, with its sender (nil for a one-way send), and decides its
// fate. It runs on the actor's goroutine and must not block.
type Interceptor func(msg any, sender *actor.PID) Verdict

// Intercept installs f for the actor pid of this node, replacing any
// earlier one; nil removes it. It applies to partition replicas, the
// controller and connection actors (spawned with the node's intercepting
// middleware). Lifecycle messages and a replica's messages to itself
// (raftactor.IsInternal) are never intercepted: losing those would wedge
// the actor rather than simulate anything a peer or client can do. A
// delayed message is redelivered through the mailbox, so later messages
// may overtake it, as on a network. Dropping a connection actor's
// messages loses requests or their answers, so that connection may stall,
// as a client sees a broker that stopped answering. An interceptor lives
// as long as this Broker: a restarted node starts without any. Testkit
// hook.
func (b *Broker) Intercept(pid *actor.PID, f Interceptor) {
	if pid == nil {
		return
	}
	b.hooks.mu.Lock()
	defer b.hooks.mu.Unlock()
	m := make(map[string]Interceptor, len(b.hooks.load())+1)
	for k, v := range b.hooks.load() {
		m[k] = v
	}
	if f == nil {
		delete(m, pid.Id)
	} else {
		m[pid.Id] = f
	}
	if len(m) == 0 {
		m = nil
	}
	b.hooks.byPID.Store(&m)
}

// interceptors is the node's installed interceptors by actor id, copied
// on write so that the hot path is one atomic load.
type interceptors struct {
	mu    sync.Mutex
	byPID atomic.Pointer[map[string]Interceptor]
}

func (h *interceptors) load() map[string]Interceptor {
	if p := h.byPID.Load(); p != nil {
		return *p
	}
	return nil
}

// delayed carries an intercepted message back to its actor once its
// delay has passed; the middleware unwraps it and lets it through.
type delayed struct{ env *actor.MessageEnvelope }

// interceptable adds the node's intercepting middleware to props: with no
// interceptor installed it costs one atomic load per message.
func (b *Broker) interceptable(props *actor.Props) *actor.Props {
	return props.Configure(actor.WithReceiverMiddleware(b.interceptMiddleware))
}

func (b *Broker) interceptMiddleware(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
		if d, ok := env.Message.(*delayed); ok {
			next(c, d.env)
			return
		}
		hooks := b.hooks.load()
		if hooks == nil || !interceptableMsg(env.Message) {
			next(c, env)
			return
		}
		f := hooks[c.Self().Id]
		if f == nil {
			next(c, env)
			return
		}
		v := f(env.Message, env.Sender)
		switch {
		case v.Drop:
		case v.Delay > 0:
			self, sys := c.Self(), c.ActorSystem()
			time.AfterFunc(v.Delay, func() { sys.Root.Send(self, &delayed{env}) })
		default:
			next(c, env)
		}
	}
}

// interceptableMsg is false for what an interceptor must not see:
// protoactor's lifecycle and system messages, and an actor's own
// scheduling messages.
func interceptableMsg(m any) bool {
	switch m.(type) {
	case actor.SystemMessage, actor.AutoReceiveMessage:
		return false
	}
	return !raftactor.IsInternal(m)
}
