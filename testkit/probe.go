package testkit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/chronik-actor/chronik-actor/actors"
)

// Probe is an actor a test spawns on a node's actor system to talk to the
// node's actors at the message level: it records everything it receives,
// in order, for ExpectMsg, ExpectNoMsg and FishFor, and can answer the
// sender of the last message it took (Reply). Use its PID as the ReplyTo
// (or sender) of a scripted message, e.g. a raftactor.Propose to a
// replica found with actors.Broker.ReplicaPID.
type Probe struct {
	t   testing.TB
	sys *actor.ActorSystem
	pid *actor.PID

	mu      sync.Mutex
	queue   []received
	arrived chan struct{} // signalled (never blocking) on each arrival
	last    *actor.PID    // sender of the last message taken
}

type received struct {
	msg    any
	sender *actor.PID
}

// NewProbe spawns a probe on sys and stops it when the test ends.
func NewProbe(t testing.TB, sys *actor.ActorSystem) *Probe {
	t.Helper()
	p := &Probe{t: t, sys: sys, arrived: make(chan struct{}, 1)}
	p.pid = sys.Root.Spawn(actor.PropsFromFunc(p.receive))
	t.Cleanup(func() { sys.Root.Stop(p.pid) })
	return p
}

// PID is the probe's address.
func (p *Probe) PID() *actor.PID { return p.pid }

func (p *Probe) receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case actor.SystemMessage, actor.AutoReceiveMessage:
		return // its own lifecycle is not what a test waits for
	}
	p.mu.Lock()
	p.queue = append(p.queue, received{ctx.Message(), ctx.Sender()})
	p.mu.Unlock()
	select {
	case p.arrived <- struct{}{}:
	default:
	}
}

// Send sends msg to pid with the probe as its sender, so that an actor
// answering with ctx.Respond answers the probe.
func (p *Probe) Send(pid *actor.PID, msg any) {
	p.sys.Root.RequestWithCustomSender(pid, msg, p.pid)
}

// Reply answers the sender of the last message the probe took (by
// ExpectMsg or FishFor); the test fails if it had no sender.
func (p *Probe) Reply(msg any) {
	p.t.Helper()
	p.mu.Lock()
	to := p.last
	p.mu.Unlock()
	if to == nil {
		p.t.Fatalf("probe %s: Reply(%T): the last message taken had no sender", p.pid.Id, msg)
	}
	p.sys.Root.RequestWithCustomSender(to, msg, p.pid)
}

// next takes the oldest message not taken yet, waiting until deadline.
func (p *Probe) next(deadline time.Time) (received, bool) {
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			r := p.queue[0]
			p.queue = p.queue[1:]
			p.last = r.sender
			p.mu.Unlock()
			return r, true
		}
		p.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			return received{}, false
		}
		tm := time.NewTimer(left)
		select {
		case <-p.arrived:
		case <-tm.C:
		}
		tm.Stop()
	}
}

// ExpectMsg takes the probe's next message, waiting up to within, and
// fails the test unless one came and is a T. (A function, not a method:
// Go methods cannot have type parameters.)
func ExpectMsg[T any](p *Probe, within time.Duration) T {
	p.t.Helper()
	r, ok := p.next(time.Now().Add(within))
	if !ok {
		var zero T
		p.t.Fatalf("probe %s: no message within %v, want a %T", p.pid.Id, within, zero)
	}
	m, ok := r.msg.(T)
	if !ok {
		var zero T
		p.t.Fatalf("probe %s: got %T (%s), want a %T", p.pid.Id, r.msg, describe(r.msg), zero)
	}
	return m
}

// ExpectNoMsg fails the test if the probe receives anything within d (or
// holds a message not taken yet).
func (p *Probe) ExpectNoMsg(d time.Duration) {
	p.t.Helper()
	if r, ok := p.next(time.Now().Add(d)); ok {
		p.t.Fatalf("probe %s: got %T (%s), want no message within %v", p.pid.Id, r.msg, describe(r.msg), d)
	}
}

// FishFor takes messages until one satisfies pred, and returns it; those
// before it are discarded. It fails the test if none does within.
func (p *Probe) FishFor(pred func(any) bool, within time.Duration) any {
	p.t.Helper()
	deadline := time.Now().Add(within)
	var skipped []string
	for {
		r, ok := p.next(deadline)
		if !ok {
			p.t.Fatalf("probe %s: no matching message within %v (skipped %d: %v)", p.pid.Id, within, len(skipped), skipped)
		}
		if pred(r.msg) {
			return r.msg
		}
		if len(skipped) < 10 {
			skipped = append(skipped, fmt.Sprintf("%T", r.msg))
		}
	}
}

func describe(m any) string {
	s := fmt.Sprintf("%+v", m)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Intercept installs f on node for the actor pid (see
// actors.Broker.Intercept for what it sees and what it may do) and
// returns the function that removes it; it is removed at the test's end
// in any case.
func Intercept(t testing.TB, node *actors.Broker, pid *actor.PID, f actors.Interceptor) (remove func()) {
	t.Helper()
	if pid == nil {
		t.Fatalf("intercept: no actor (nil pid)")
	}
	node.Intercept(pid, f)
	var once sync.Once
	remove = func() { once.Do(func() { node.Intercept(pid, nil) }) }
	t.Cleanup(remove)
	return remove
}
