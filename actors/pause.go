package actors

import "sync/atomic"

// Pause freezes the node's Kafka side and its raft clock, for in-process
// tests that simulate SIGSTOP (testkit's LocalCluster.Pause): client
// connections are neither read nor written (requests and responses wait
// in the socket buffers, as they would for a stopped process), new
// connections wait unaccepted in the listen backlog, and no replica
// ticks, so no election timeout runs out and no leader heartbeats. It
// is not a whole SIGSTOP: goroutines already running go on (a fetch's
// long poll, a checkpoint's fsync, group timers), and the raft transport
// is untouched; the test's network (cluster.Config.Network) drops the
// node's raft traffic both ways. Resume undoes it; Close and Kill resume
// first.
func (b *Broker) Pause() { b.gate.pause() }

// Resume lets a paused node go on where it stopped.
func (b *Broker) Resume() { b.gate.resume() }

// pauseGate is what Pause closes: readers, writers and the accept loop
// wait on it. Open, waiting on it costs one atomic load and a select on
// a closed channel.
type pauseGate struct {
	open   atomic.Pointer[chan struct{}] // closed while not paused
	paused atomic.Bool
}

func newPauseGate() *pauseGate {
	g := &pauseGate{}
	ch := make(chan struct{})
	close(ch)
	g.open.Store(&ch)
	return g
}

func (g *pauseGate) pause() {
	if g.paused.CompareAndSwap(false, true) {
		ch := make(chan struct{})
		g.open.Store(&ch)
	}
}

func (g *pauseGate) resume() {
	if g.paused.CompareAndSwap(true, false) {
		close(*g.open.Load())
	}
}

func (g *pauseGate) isPaused() bool { return g.paused.Load() }

// wait returns true once the gate is open, false if stop closes first.
func (g *pauseGate) wait(stop <-chan struct{}) bool {
	select {
	case <-*g.open.Load():
		return true
	case <-stop:
		return false
	}
}
