package actors

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/cluster"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// peers is the node's side of the cluster: the transport to the other
// nodes, the table of every group's leader, and the routing of inbound
// raft messages to this node's replicas. On a single node it holds only
// the leader table, fed by the local replicas.
type peers struct {
	b       *Broker
	tr      *cluster.Transport // nil on a single node
	leaders *cluster.LeaderTable

	mu     sync.RWMutex
	groups map[uint64]groupReplica
	// hadState: the node's DB held the controller's raft log at start.
	hadState bool
	// controller is the node's controller state machine, for peers' calls
	// that may come while the node is still starting.
	controller atomic.Pointer[raftactor.Controller]
	stop       chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup
}

type groupReplica struct {
	pid *actor.PID
	r   *raftactor.Replica
}

// announceEvery re-sends this node's leaderships to every peer, for peers
// that came up after the change was first announced.
const announceEvery = time.Second

func newPeers(b *Broker) *peers {
	return &peers{b: b, leaders: cluster.NewLeaderTable(), groups: map[uint64]groupReplica{}, stop: make(chan struct{})}
}

// clustered reports whether the configuration lists other nodes.
func (b *Broker) clustered() bool { return len(b.cfg.Nodes) > 1 }

// nodeIDs are the cluster's members: the controller's voters.
func (b *Broker) nodeIDs() []int32 {
	if !b.clustered() {
		return []int32{b.cfg.NodeID}
	}
	ids := make([]int32, len(b.cfg.Nodes))
	for i, n := range b.cfg.Nodes {
		ids[i] = n.ID
	}
	return ids
}

// start opens the raft listener and dials the peers.
func (p *peers) start() error {
	if !p.b.clustered() {
		return nil
	}
	addrs := map[uint64]string{}
	for _, n := range p.b.cfg.Nodes {
		addrs[uint64(n.ID)] = n.Raft
	}
	tr, err := cluster.StartTransport(cluster.TransportConfig{
		Fault:         p.b.netFault(),
		NodeID:        uint64(p.b.cfg.NodeID),
		Addr:          addrs[uint64(p.b.cfg.NodeID)],
		Peers:         addrs,
		Log:           p.b.log,
		Deliver:       p.deliver,
		OnLeader:      func(_ uint64, a cluster.Announcement) { p.leaders.Observe(a.Group, a.Leader, a.Term) },
		OnUnreachable: p.unreachable,
		OnCall:        p.answerCall,
		ReceiveSnapshot: func(group uint64, m *pb.Message, body io.Reader) error {
			g, ok := p.lookup(group)
			if !ok {
				return fmt.Errorf("no replica of raft group %d here", group)
			}
			if err := g.r.ReceiveSnapshot(m, body); err != nil {
				return err
			}
			if !g.r.AcceptStep() {
				return fmt.Errorf("raft group %d is backlogged", group)
			}
			p.b.sys.Root.Send(g.pid, &raftactor.Step{Msgs: []*pb.Message{m}})
			return nil
		},
		OnQuiesce: func(from, group, term, commit uint64) {
			if g, ok := p.lookup(group); ok {
				p.b.sys.Root.Send(g.pid, &raftactor.Quiesce{From: from, Term: term, Commit: commit})
			}
		},
		OnPeer: p.peerChanged,
		OnSnapshotSent: func(group, to uint64, ok bool) {
			if g, found := p.lookup(group); found {
				p.b.sys.Root.Send(g.pid, &raftactor.SnapshotStatus{To: to, OK: ok})
			}
		},
	})
	if err != nil {
		return err
	}
	p.tr = tr
	p.wg.Add(1)
	go p.announceLoop()
	return nil
}

// close stops the announcements and the transport; safe more than once
// (Kill closes it first, then the common shutdown again).
func (p *peers) close() {
	p.closeOnce.Do(func() {
		close(p.stop)
		p.wg.Wait()
		if p.tr != nil {
			p.tr.Close()
		}
	})
}

// peerChanged tells every replica here that a peer's node connected or
// went away: quiesced groups wake where that matters (raftactor's
// quiesce.go).
func (p *peers) peerChanged(id uint64, up bool) {
	msg := &raftactor.PeerChanged{ID: id, Up: up}
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, g := range p.groups {
		p.b.sys.Root.Send(g.pid, msg)
	}
}

// peerUp reports whether peer id's node is connected; nil on one node.
func (p *peers) peerUp() func(uint64) bool {
	if p.tr == nil {
		return nil
	}
	return p.tr.Connected
}

// transport is what replicas send through; nil (no peers) on one node.
func (p *peers) transport() raftactor.Transport {
	if p.tr == nil {
		return nil
	}
	return p.tr
}

func (p *peers) register(group uint64, pid *actor.PID, r *raftactor.Replica) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.groups[group] = groupReplica{pid, r}
}

func (p *peers) forget(group uint64) {
	p.mu.Lock()
	delete(p.groups, group)
	p.mu.Unlock()
	p.leaders.Forget(group)
}

func (p *peers) lookup(group uint64) (groupReplica, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	g, ok := p.groups[group]
	return g, ok
}

// deliver hands one group's messages of a frame to its replica, or drops
// them when the replica is backlogged or not (yet) here: raft retransmits.
func (p *peers) deliver(group uint64, msgs []*pb.Message) {
	g, ok := p.lookup(group)
	if !ok || !g.r.AcceptStep() {
		return
	}
	p.b.sys.Root.Send(g.pid, &raftactor.Step{Msgs: msgs})
}

func (p *peers) unreachable(group, to uint64) {
	if g, ok := p.lookup(group); ok {
		p.b.sys.Root.Send(g.pid, &raftactor.Unreachable{To: to})
	}
}

// onLeader runs on a replica's goroutine when it learns of a leader.
func (p *peers) onLeader(li raftactor.LeaderInfo) {
	p.leaders.Observe(li.Group, li.Leader, li.Term)
	if p.tr != nil && li.Ready && li.Leader == uint64(p.b.cfg.NodeID) {
		p.tr.Announce(cluster.Announcement{Group: li.Group, Leader: li.Leader, Term: li.Term})
	}
}

func (p *peers) announceLoop() {
	defer p.wg.Done()
	t := time.NewTicker(announceEvery)
	defer t.Stop()
	self := uint64(p.b.cfg.NodeID)
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.RLock()
		for group, g := range p.groups {
			if g.r.LeaderReady() {
				p.tr.Announce(cluster.Announcement{Group: group, Leader: self, Term: uint64(g.r.Term())})
			}
		}
		p.mu.RUnlock()
	}
}

// leaderOf is the node leading group as this node last heard, -1 if none.
func (p *peers) leaderOf(group uint64) (leader int32, epoch int32) {
	e, ok := p.leaders.Get(group)
	if !ok || e.Leader == 0 {
		return -1, int32(e.Term)
	}
	return int32(e.Leader), int32(e.Term)
}

// controllerTimeout bounds how long a controller command waits for a
// controller leader (an election, a peer coming up) before its request is
// answered with a retriable error.
const controllerTimeout = 10 * time.Second

// callController proposes cmd to the controller's leader, here or on a
// peer, and waits for the outcome. It blocks: callers run it off any
// actor's goroutine.
func (b *Broker) callController(cmd *raftactor.ControllerCmd, within time.Duration) (*raftactor.ControllerResult, error) {
	deadline := time.Now().Add(within)
	self := uint64(b.cfg.NodeID)
	for {
		var res *raftactor.ControllerResult
		var err error
		lead := b.peers.leaders
		e, _ := lead.Get(raftactor.ControllerGroup)
		switch {
		case b.controllerReplica.LeaderReady() || !b.clustered():
			res, err = b.proposeLocalController(cmd, time.Until(deadline))
		case e.Leader != 0 && e.Leader != self:
			done := make(chan struct{})
			b.peers.tr.Call(e.Leader, cmd.Encode(), time.Until(deadline), func(reply []byte, cerr error) {
				if cerr == nil {
					res, err = raftactor.DecodeControllerOutcome(reply)
				} else {
					err = cerr
				}
				close(done)
			})
			<-done
		default:
			err = raftactor.ErrNotLeader
		}
		retriable := errors.Is(err, raftactor.ErrNotLeader) || errors.Is(err, cluster.ErrPeerUnreachable)
		if !retriable || time.Now().After(deadline) {
			return res, err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-b.peers.stop:
			return nil, raftactor.ErrStopped
		}
	}
}

func (b *Broker) proposeLocalController(cmd *raftactor.ControllerCmd, within time.Duration) (*raftactor.ControllerResult, error) {
	f := actor.NewFuture(b.sys, max(within, time.Second))
	b.sys.Root.Send(b.controllerPID, &raftactor.Propose{Data: cmd.Encode(), ReplyTo: f.PID()})
	v, err := f.Result()
	if err != nil {
		return nil, err
	}
	res := v.(*raftactor.Result)
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Value.(*raftactor.ControllerResult), nil
}

// answerCall serves a peer's forwarded controller command, if this node
// leads the controller.
func (p *peers) answerCall(from uint64, payload []byte, reply func([]byte)) {
	if string(payload) == probeInitialized {
		if p.registered(from) {
			reply([]byte("yes"))
		} else {
			reply([]byte("no"))
		}
		return
	}
	go func() {
		// Looked up, not read from the broker: a peer may call while
		// this node is still starting its controller.
		g, ok := p.lookup(raftactor.ControllerGroup)
		if !ok || !g.r.LeaderReady() {
			reply(raftactor.EncodeControllerOutcome(nil, raftactor.ErrNotLeader))
			return
		}
		f := actor.NewFuture(p.b.sys, controllerTimeout)
		p.b.sys.Root.Send(g.pid, &raftactor.Propose{Data: payload, ReplyTo: f.PID()})
		v, err := f.Result()
		if err != nil {
			reply(raftactor.EncodeControllerOutcome(nil, err))
			return
		}
		res := v.(*raftactor.Result)
		cr, _ := res.Value.(*raftactor.ControllerResult)
		reply(raftactor.EncodeControllerOutcome(cr, res.Err))
	}()
}

// brokerAddr is the advertised Kafka host and port of node id.
func (b *Broker) brokerAddr(id int32) (string, int32, bool) {
	if id == b.cfg.NodeID {
		return b.host, b.port, true
	}
	for _, n := range b.cfg.Nodes {
		if n.ID != id {
			continue
		}
		host, port, err := net.SplitHostPort(n.Kafka)
		if err != nil {
			return "", 0, false
		}
		p, err := strconv.Atoi(port)
		return host, int32(p), err == nil
	}
	return "", 0, false
}

// live reports whether node id is up as far as this node can tell: itself,
// or a peer its transport is connected to.
func (b *Broker) live(id int32) bool {
	return id == b.cfg.NodeID || (b.peers.tr != nil && b.peers.tr.Connected(uint64(id)))
}

// liveCount is how many of the cluster's nodes are up (live).
func (b *Broker) liveCount() int {
	n := 0
	for _, id := range b.nodeIDs() {
		if b.live(id) {
			n++
		}
	}
	return n
}

// rackOf is node id's rack from cluster.toml, nil when it names none.
func (b *Broker) rackOf(id int32) *string {
	for _, n := range b.cfg.Nodes {
		if n.ID == id && n.Rack != "" {
			r := n.Rack
			return &r
		}
	}
	return nil
}

// controllerID is the node leading the controller, -1 when none is known.
func (b *Broker) controllerID() int32 {
	if !b.clustered() {
		return b.cfg.NodeID
	}
	id, _ := b.peers.leaderOf(raftactor.ControllerGroup)
	return id
}

// servingErr is the error for a request that only a partition's ready
// leader may serve, given its replica here (nil when hosted elsewhere). A
// group of one leads from its start and serves as it always has.
func servingErr(h *partitionHandle) *kerr.Error {
	switch {
	case h == nil:
		return kerr.NotLeaderForPartition
	case len(h.replica.Voters()) > 1 && !h.replica.LeaderReady():
		return kerr.NotLeaderForPartition
	}
	return nil
}

// handOffLeadership asks every multi-voter replica this node leads, the
// controller's included, to hand its leadership to a caught-up follower
// (etcd-raft TransferLeader), and waits until they have or within has
// passed. A graceful stop then costs clients a metadata refresh and
// retriable errors, not an election timeout.
func (b *Broker) handOffLeadership(within time.Duration) {
	if !b.clustered() {
		return
	}
	self := uint64(b.cfg.NodeID)
	var led []groupReplica
	b.peers.mu.RLock()
	for _, g := range b.peers.groups {
		if len(g.r.Voters()) > 1 && g.r.LeaderReady() {
			led = append(led, g)
		}
	}
	b.peers.mu.RUnlock()
	// Each replica says whom it hands over to; those with no caught-up
	// follower (the last node of a cluster going down) are not waited for.
	fs := make([]*actor.Future, len(led))
	for i, g := range led {
		fs[i] = actor.NewFuture(b.sys, within)
		b.sys.Root.Send(g.pid, &raftactor.TransferLeadership{ReplyTo: fs[i].PID()})
	}
	deadline := time.Now().Add(within)
	for i, g := range led {
		v, err := fs[i].Result()
		if ts, ok := v.(*raftactor.TransferStarted); err != nil || !ok || ts.To == 0 {
			continue
		}
		for g.r.Leader() == self && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if n := len(led); n > 0 {
		b.log.Info("handed off leadership before stopping", "groups", n, "took", within-time.Until(deadline))
	}
}

// probeInitialized is the call a node whose data dir is empty makes to
// its peers, asking whether it is registered: a payload no controller
// command can be (those begin with an 8-byte proposal header of zeros).
const probeInitialized = "registered?"

// registered reports whether node id has run as a member of the cluster
// as far as this node's controller metadata knows.
func (p *peers) registered(id uint64) bool {
	c := p.controller.Load()
	return c != nil && c.Metadata().Brokers[int32(id)] != nil
}

// refuseIfWiped keeps a node with an empty data dir out of a cluster that
// already exists: bootstrapped afresh it would vote and acknowledge
// without the entries it had acknowledged before (raft's safety rests on
// persisted votes and logs), and could elect a leader missing committed
// records. It asks every peer whether the controller knows this node as
// registered (a node registers once it has run in the cluster, so a node
// starting for the first time, even after the others formed the cluster,
// is not); one yes is enough to refuse. A peer that does not answer within
// the wait counts as a no: when no node of a new cluster is up yet there
// is nobody to ask.
func (p *peers) refuseIfWiped(within time.Duration) error {
	if p.tr == nil || p.hadState {
		return nil
	}
	type answer struct {
		id       uint64
		answered bool // false: the call failed or timed out
		yes      bool
	}
	pending := map[uint64]bool{}
	for _, n := range p.b.cfg.Nodes {
		if n.ID != p.b.cfg.NodeID {
			pending[uint64(n.ID)] = true
		}
	}
	// Peers are asked again every 100 ms until each has answered, without
	// waiting for the calls already out: a peer that starts with this
	// node may get a call before its own connection back is up, and its
	// reply is then lost; waiting out that call's timeout (1 s, the
	// margin for a slow peer) cost every such start a second.
	answers := make(chan answer)
	done := make(chan struct{})
	defer close(done)
	ask := func(id uint64) {
		p.tr.Call(id, []byte(probeInitialized), time.Second, func(reply []byte, err error) {
			a := answer{id: id, answered: err == nil, yes: err == nil && string(reply) == "yes"}
			// Off the caller's goroutine: Call may run this at once,
			// from inside ask.
			go func() {
				select {
				case answers <- a:
				case <-done:
				}
			}()
		})
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	again := time.NewTicker(100 * time.Millisecond)
	defer again.Stop()
	for id := range pending {
		ask(id)
	}
	for len(pending) > 0 {
		select {
		case a := <-answers:
			switch {
			case a.yes:
				return fmt.Errorf("node %d's data dir %s is empty, but node %d knows it as a member that ran in this cluster: a node that lost its data must not rejoin as a voter (it could elect a leader missing acknowledged records); restore its data dir, or replace the node", p.b.cfg.NodeID, p.b.cfg.DataDir, a.id)
			case a.answered:
				delete(pending, a.id)
			}
		case <-again.C:
			for id := range pending {
				ask(id) // a peer not up yet, or its answer lost: ask again
			}
		case <-deadline.C:
			return nil
		}
	}
	return nil
}

// register records this node in the controller's metadata (once, or when
// its advertised address or rack changed).
func (b *Broker) register() error {
	self := raftactor.BrokerInfo{ID: b.cfg.NodeID, Kafka: *b.advertised.Load(), Rack: b.cfg.Rack}
	if cur := b.controller.Metadata().Brokers[self.ID]; cur != nil && *cur == self {
		return nil
	}
	res, err := b.callController(raftactor.RegisterBrokerCmd(self), 30*time.Second)
	if err == nil && res.Err != nil {
		err = res.Err
	}
	return err
}
