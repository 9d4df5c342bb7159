package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The peer transport: one TCP connection to each peer, dialed from the
// host of this node's own raft address (so a firewall rule between two
// addresses on one machine partitions exactly those two nodes), carrying
// frames that batch the raft messages of every group bound for that peer,
// and leader announcements.
//
// Sending never blocks a replica: each peer has a bounded queue (in
// messages and in bytes); a message that does not fit is dropped and its
// group told through OnUnreachable, as etcd-raft expects of a lossy
// transport (raft retransmits). A peer that is down costs its own queue,
// drained and dropped while the connection is re-dialed with backoff.
//
// Wire: a connection opens with hello (magic, version, sender id); then
// frames: u32 length of the rest, u32 item count, items. An item is a kind
// byte, u64 group, u32 length and the payload (a marshaled raftpb.Message
// for itemRaft; term u64 and leader u64 for itemLeader).

const (
	helloMagic   = 0x4348524b // "CHRK"
	wireVersion  = 1
	itemRaft     = 1
	itemLeader   = 2
	itemCall     = 3 // group carries the call id
	itemReply    = 4
	itemQuiesce  = 5 // term u64, commit u64
	maxFrame     = 256 << 20
	frameTarget  = 4 << 20 // stop gathering a frame past this size
	queueItems   = 8192
	queueBytes   = 64 << 20
	dialTimeout  = time.Second
	writeTimeout = 10 * time.Second
	// A sender with nothing to send writes an empty frame this often, and
	// a peer not heard from for deadAfter counts as down: a partition
	// that drops packets (a firewall rule) leaves every TCP connection
	// open, and quiesced groups send nothing that could notice it.
	keepaliveEvery = 250 * time.Millisecond
	deadAfter      = 1500 * time.Millisecond
)

// Announcement tells peers who leads a group, for nodes that host no
// replica of it (their Metadata answers still name the leader).
type Announcement struct {
	Group, Leader, Term uint64
}

// TransportConfig describes a node's transport.
type TransportConfig struct {
	NodeID uint64
	Addr   string            // this node's raft address: listen here, dial from its host
	Peers  map[uint64]string // the other nodes' raft addresses
	Log    *slog.Logger
	// Deliver gets the raft messages of one group from one inbound frame,
	// in order. It runs on the connection's reader goroutine: it must not
	// block (the node hands them to the replica's mailbox or drops them).
	Deliver func(group uint64, msgs []*pb.Message)
	// OnQuiesce gets a leader's quiesce notice for one of this node's
	// replicas (raftactor.Quiesce), on reader goroutines.
	OnQuiesce func(from, group, term, commit uint64)
	// OnPeer hears of a peer's node connecting (up) or going away, from
	// its sender goroutine.
	OnPeer func(id uint64, up bool)
	// OnLeader gets peers' announcements, on reader goroutines.
	OnLeader func(from uint64, a Announcement)
	// OnUnreachable hears of every message dropped for want of room or of
	// a connection, from any goroutine; it must not block.
	OnUnreachable func(group, to uint64)
	// OnCall answers a peer's Call (a controller command forwarded to
	// this node as the controller's leader); reply may run on any
	// goroutine, once. OnCall must not block.
	OnCall func(from uint64, payload []byte, reply func([]byte))
	// ReceiveSnapshot stages a snapshot streamed by a peer (m is its
	// MsgSnap, body the bulk) and hands m to the replica; it runs on the
	// snapshot connection's goroutine and may block while it writes.
	ReceiveSnapshot func(group uint64, m *pb.Message, body io.Reader) error
	// OnSnapshotSent hears how streaming a snapshot to a peer went.
	OnSnapshotSent func(group, to uint64, ok bool)
	// Fault, when set, decides the fate of everything bound for a peer
	// (netfault.go): the simulated network of tests. Nil costs nothing.
	Fault NetFault
}

// Transport is a node's peer transport.
type Transport struct {
	cfg    TransportConfig
	ln     net.Listener
	peers  map[uint64]*peer
	closed chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	inbound map[net.Conn]struct{}
	nextID  uint64
	calls   map[uint64]*call

	snapSlots chan struct{} // bounds snapshots streaming out at once
}

type call struct {
	done  func([]byte, error)
	timer *time.Timer
}

// ErrPeerUnreachable answers a Call to a peer with no connection up.
var ErrPeerUnreachable = errors.New("cluster: peer unreachable")

// ErrCallTimeout answers a Call whose reply did not come in time.
var ErrCallTimeout = errors.New("cluster: no reply from peer in time")

// ErrClosed answers the calls outstanding when the transport closes, and
// any made after.
var ErrClosed = errors.New("cluster: transport closed")

type item struct {
	kind  byte
	group uint64
	m     *pb.Message
	a     Announcement
	q     [2]uint64 // itemQuiesce: term, commit
	data  []byte    // itemCall, itemReply
	size  int
}

// peer is the outbound side of one connection.
type peer struct {
	t     *Transport
	id    uint64
	addr  string
	q     chan item
	bytes atomic.Int64 // queued payload bytes (approximate)
	up    atomic.Bool  // connected
	heard atomic.Int64 // when a frame last came from the peer (unix ns); 0 when its connection ended
	alive atomic.Bool  // up and heard from within deadAfter, as last reported
	// delayed holds what a Fault delays (only used with one).
	delayed delayLine
}

// StartTransport listens on cfg.Addr and starts one sender per peer.
func StartTransport(cfg TransportConfig) (*Transport, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("raft listen %s: %w", cfg.Addr, err)
	}
	t := &Transport{cfg: cfg, ln: ln, peers: map[uint64]*peer{}, closed: make(chan struct{}), inbound: map[net.Conn]struct{}{}, calls: map[uint64]*call{}, snapSlots: make(chan struct{}, maxSnapshotsOut)}
	for id, addr := range cfg.Peers {
		if id == cfg.NodeID {
			continue
		}
		p := &peer{t: t, id: id, addr: addr, q: make(chan item, queueItems)}
		p.delayed.p = p
		t.peers[id] = p
		t.wg.Add(1)
		go p.run()
	}
	t.wg.Add(2)
	go t.accept()
	go t.watch()
	return t, nil
}

// Addr is the bound raft address.
func (t *Transport) Addr() string { return t.ln.Addr().String() }

// Connected reports whether the outbound connection to peer id is up.
func (t *Transport) Connected(id uint64) bool {
	p := t.peers[id]
	return p != nil && p.alive.Load()
}

// watch reports peers going quiet or coming back (OnPeer), every
// keepaliveEvery, until the transport closes.
func (t *Transport) watch() {
	defer t.wg.Done()
	tk := time.NewTicker(keepaliveEvery)
	defer tk.Stop()
	for {
		select {
		case <-t.closed:
			return
		case <-tk.C:
		}
		now := time.Now().UnixNano()
		for _, p := range t.peers {
			alive := p.up.Load() && now-p.heard.Load() < int64(deadAfter)
			if p.alive.Swap(alive) != alive {
				t.cfg.Log.Debug("raft peer liveness", "peer", p.id, "alive", alive)
				if f := t.cfg.OnPeer; f != nil {
					f(p.id, alive)
				}
			}
		}
	}
}

// Close stops the transport and waits for its goroutines.
func (t *Transport) Close() {
	select {
	case <-t.closed:
		return
	default:
	}
	close(t.closed)
	t.ln.Close()
	t.mu.Lock()
	for c := range t.inbound {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	for _, p := range t.peers {
		p.delayed.stop()
	}
	// Their callers would otherwise wait out each call's timeout, which
	// may be long after the node is gone.
	t.mu.Lock()
	calls := t.calls
	t.calls = map[uint64]*call{}
	t.mu.Unlock()
	for _, c := range calls {
		// Taken from the map, the call is this loop's to answer: a timer
		// that fires now finds nothing to time out.
		c.timer.Stop()
		c.done(nil, ErrClosed)
	}
}

// fate asks the Fault hook about o, sent from this node.
func (t *Transport) fate(o Outbound) Fate {
	if t.cfg.Fault == nil {
		return Fate{}
	}
	o.From = t.cfg.NodeID
	return t.cfg.Fault(o)
}

// Send queues msgs of group for their peers; it never blocks.
func (t *Transport) Send(group uint64, msgs []*pb.Message) {
	for _, m := range msgs {
		to := m.GetTo()
		p := t.peers[to]
		if p == nil {
			continue
		}
		var f Fate
		if t.cfg.Fault != nil {
			f = t.fate(Outbound{To: to, Kind: KindRaft, Group: group, Type: m.GetType().String()})
			if f.Drop {
				continue
			}
		}
		size := 64
		for _, e := range m.Entries {
			size += len(e.Data) + 16
		}
		if !p.send(item{kind: itemRaft, group: group, m: m, size: size}, f.Delay) {
			t.unreachable(group, to)
		}
	}
}

// Quiesce implements raftactor.Quiescer. A notice that finds no room is
// lost: the follower then goes on ticking, which is safe (see
// raftactor's quiesce.go).
func (t *Transport) Quiesce(group, to, term, commit uint64) {
	if p := t.peers[to]; p != nil {
		if f := t.fate(Outbound{To: to, Kind: KindQuiesce, Group: group}); !f.Drop {
			p.send(item{kind: itemQuiesce, group: group, q: [2]uint64{term, commit}, size: 32}, f.Delay)
		}
	}
}

// Announce sends a to every peer; dropped silently when a queue is full
// (announcements repeat).
func (t *Transport) Announce(a Announcement) {
	for _, p := range t.peers {
		if f := t.fate(Outbound{To: p.id, Kind: KindLeader, Group: a.Group}); !f.Drop {
			p.send(item{kind: itemLeader, group: a.Group, a: a, size: 32}, f.Delay)
		}
	}
}

// Call sends payload to peer to's OnCall; done runs once, on some
// goroutine, with the reply or with ErrPeerUnreachable or ErrCallTimeout.
func (t *Transport) Call(to uint64, payload []byte, timeout time.Duration, done func([]byte, error)) {
	p := t.peers[to]
	if p == nil {
		done(nil, ErrPeerUnreachable)
		return
	}
	t.mu.Lock()
	select {
	case <-t.closed:
		t.mu.Unlock()
		done(nil, ErrClosed)
		return
	default:
	}
	t.nextID++
	id := t.nextID
	c := &call{done: done}
	t.calls[id] = c
	c.timer = time.AfterFunc(timeout, func() {
		if c := t.takeCall(id); c != nil {
			c.done(nil, ErrCallTimeout)
		}
	})
	t.mu.Unlock()
	f := t.fate(Outbound{To: to, Kind: KindCall})
	if f.Drop {
		return // lost on the way: the call times out
	}
	if it := (item{kind: itemCall, group: id, data: payload, size: len(payload) + 16}); !p.send(it, f.Delay) {
		t.notQueued(to, it)
	}
}

// notQueued handles an item that found no room or no connection: a raft
// message's group is told, a call fails at once.
func (t *Transport) notQueued(to uint64, it item) {
	switch it.kind {
	case itemRaft:
		t.unreachable(it.group, to)
	case itemCall:
		if c := t.takeCall(it.group); c != nil {
			c.timer.Stop()
			c.done(nil, ErrPeerUnreachable)
		}
	}
}

func (t *Transport) takeCall(id uint64) *call {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.calls[id]
	delete(t.calls, id)
	return c
}

func (t *Transport) unreachable(group, to uint64) {
	if t.cfg.OnUnreachable != nil {
		t.cfg.OnUnreachable(group, to)
	}
}

// send queues it, or with a delay (or items already held back, which it
// must not overtake) hands it to the delay line; false when it found no
// room or no connection.
func (p *peer) send(it item, delay time.Duration) bool {
	if p.t.cfg.Fault != nil && (delay > 0 || p.delayed.holding()) {
		p.delayed.add(it, time.Now().Add(delay))
		return true
	}
	return p.enqueue(it)
}

func (p *peer) enqueue(it item) bool {
	if !p.up.Load() || p.bytes.Load()+int64(it.size) > queueBytes {
		return false
	}
	select {
	case p.q <- it:
		p.bytes.Add(int64(it.size))
		return true
	default:
		return false
	}
}

// run dials the peer, with backoff, and writes frames until the transport
// closes.
func (p *peer) run() {
	defer p.t.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		c, err := p.dial()
		if err != nil {
			select {
			case <-p.t.closed:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		p.t.cfg.Log.Debug("raft peer connected", "peer", p.id, "addr", p.addr)
		p.up.Store(true)
		// The peer never writes on this connection; a read returns only
		// when it is gone, which tells an idle writer at once.
		dead := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, c)
			close(dead)
		}()
		err = p.write(c, dead)
		p.up.Store(false)
		c.Close()
		p.drop()
		select {
		case <-p.t.closed:
			return
		default:
		}
		p.t.cfg.Log.Debug("raft peer disconnected", "peer", p.id, "err", err)
	}
}

// dialFromHome dials addr from the host of this node's raft address.
func (t *Transport) dialFromHome(addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	if host, _, err := net.SplitHostPort(t.cfg.Addr); err == nil {
		if ip := net.ParseIP(host); ip != nil {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	return d.Dial("tcp", addr)
}

func (p *peer) dial() (net.Conn, error) {
	c, err := p.t.dialFromHome(p.addr)
	if err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.Write(hello(p.t.cfg.NodeID, connMessages)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Connection kinds, the last byte of hello.
const (
	connMessages = 0
	connSnapshot = 1
)

func hello(from uint64, kind byte) []byte {
	h := binary.BigEndian.AppendUint32(nil, helloMagic)
	h = binary.BigEndian.AppendUint32(h, wireVersion)
	h = binary.BigEndian.AppendUint64(h, from)
	return append(h, kind)
}

// drop empties the queue after a connection is lost: those messages are
// stale by the time one is back, and raft retransmits what matters.
func (p *peer) drop() {
	for {
		select {
		case it := <-p.q:
			p.bytes.Add(-int64(it.size))
			if it.kind == itemRaft {
				p.t.unreachable(it.group, p.id)
			}
		default:
			return
		}
	}
}

// write gathers whatever is queued into one frame and writes it, until an
// error or the transport's close.
func (p *peer) write(c net.Conn, dead <-chan struct{}) error {
	w := bufio.NewWriterSize(c, 256<<10)
	var frame []byte
	var groups []uint64
	keepalive := time.NewTicker(keepaliveEvery)
	defer keepalive.Stop()
	wrote := time.Now()
	for {
		var it item
		select {
		case <-p.t.closed:
			return errors.New("closed")
		case <-dead:
			return errors.New("peer closed the connection")
		case <-keepalive.C:
			if time.Since(wrote) < keepaliveEvery || p.t.fate(Outbound{To: p.id, Kind: KindKeepalive}).Drop {
				continue
			}
			c.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := w.Write([]byte{0, 0, 0, 4, 0, 0, 0, 0}); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			wrote = time.Now()
			continue
		case it = <-p.q:
		}
		wrote = time.Now()
		frame = append(frame[:0], 0, 0, 0, 0, 0, 0, 0, 0)
		n := 0
		groups = groups[:0]
		for {
			p.bytes.Add(-int64(it.size))
			var err error
			frame, err = appendItem(frame, it)
			if err != nil {
				p.t.cfg.Log.Warn("raft message not encodable", "group", it.group, "err", err)
			} else {
				n++
				if it.kind == itemRaft {
					groups = append(groups, it.group)
				}
			}
			if len(frame) >= frameTarget {
				break
			}
			select {
			case it = <-p.q:
				continue
			default:
			}
			break
		}
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		binary.BigEndian.PutUint32(frame[4:], uint32(n))
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(frame); err != nil {
			for _, g := range groups {
				p.t.unreachable(g, p.id)
			}
			return err
		}
		if len(p.q) == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

func appendItem(b []byte, it item) ([]byte, error) {
	b = append(b, it.kind)
	b = binary.BigEndian.AppendUint64(b, it.group)
	switch it.kind {
	case itemRaft:
		lenAt := len(b)
		b = append(b, 0, 0, 0, 0)
		var err error
		b, err = proto.MarshalOptions{}.MarshalAppend(b, it.m)
		if err != nil {
			return b[:lenAt-9], err
		}
		binary.BigEndian.PutUint32(b[lenAt:], uint32(len(b)-lenAt-4))
	case itemQuiesce:
		b = binary.BigEndian.AppendUint32(b, 16)
		b = binary.BigEndian.AppendUint64(b, it.q[0])
		b = binary.BigEndian.AppendUint64(b, it.q[1])
	case itemCall, itemReply:
		b = binary.BigEndian.AppendUint32(b, uint32(len(it.data)))
		b = append(b, it.data...)
	case itemLeader:
		b = binary.BigEndian.AppendUint32(b, 16)
		b = binary.BigEndian.AppendUint64(b, it.a.Term)
		b = binary.BigEndian.AppendUint64(b, it.a.Leader)
	}
	return b, nil
}

func (t *Transport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.cfg.Log.Error("raft accept", "err", err)
			return
		}
		t.mu.Lock()
		t.inbound[c] = struct{}{}
		t.mu.Unlock()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			err := t.read(c)
			t.mu.Lock()
			delete(t.inbound, c)
			t.mu.Unlock()
			c.Close()
			select {
			case <-t.closed:
			default:
				if !errors.Is(err, io.EOF) {
					t.cfg.Log.Debug("raft inbound connection closed", "remote", c.RemoteAddr().String(), "err", err)
				}
			}
		}()
	}
}

// read decodes frames from one peer and delivers each group's messages
// of a frame in one call.
func (t *Transport) read(c net.Conn) error {
	r := bufio.NewReaderSize(c, 256<<10)
	var hello [17]byte
	if _, err := io.ReadFull(r, hello[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(hello[:]) != helloMagic || binary.BigEndian.Uint32(hello[4:]) != wireVersion {
		return fmt.Errorf("not a chronik-actor raft peer (or another wire version)")
	}
	from := binary.BigEndian.Uint64(hello[8:])
	if hello[16] == connSnapshot {
		return t.receiveSnapshot(c, r, from)
	}
	if p := t.peers[from]; p != nil {
		p.heard.Store(time.Now().UnixNano())
		defer p.heard.Store(0)
	}
	var buf []byte
	var order []uint64
	byGroup := map[uint64][]*pb.Message{}
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n < 4 || n > maxFrame {
			return fmt.Errorf("frame of %d bytes", n)
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		if p := t.peers[from]; p != nil {
			p.heard.Store(time.Now().UnixNano())
		}
		count := binary.BigEndian.Uint32(buf)
		rest := buf[4:]
		order = order[:0]
		for i := uint32(0); i < count; i++ {
			if len(rest) < 13 {
				return fmt.Errorf("truncated item")
			}
			kind, group, size := rest[0], binary.BigEndian.Uint64(rest[1:]), binary.BigEndian.Uint32(rest[9:])
			rest = rest[13:]
			if uint32(len(rest)) < size {
				return fmt.Errorf("truncated item payload")
			}
			payload := rest[:size]
			rest = rest[size:]
			switch kind {
			case itemRaft:
				m := &pb.Message{}
				if err := proto.Unmarshal(payload, m); err != nil {
					return fmt.Errorf("raft message: %w", err)
				}
				if _, ok := byGroup[group]; !ok {
					order = append(order, group)
				}
				byGroup[group] = append(byGroup[group], m)
			case itemQuiesce:
				if len(payload) == 16 && t.cfg.OnQuiesce != nil {
					t.cfg.OnQuiesce(from, group, binary.BigEndian.Uint64(payload), binary.BigEndian.Uint64(payload[8:]))
				}
			case itemCall:
				t.answer(from, group, append([]byte(nil), payload...))
			case itemReply:
				if c := t.takeCall(group); c != nil {
					c.timer.Stop()
					c.done(append([]byte(nil), payload...), nil)
				}
			case itemLeader:
				if len(payload) == 16 && t.cfg.OnLeader != nil {
					t.cfg.OnLeader(from, Announcement{Group: group, Term: binary.BigEndian.Uint64(payload), Leader: binary.BigEndian.Uint64(payload[8:])})
				}
			}
		}
		for _, g := range order {
			if t.cfg.Deliver != nil {
				t.cfg.Deliver(g, byGroup[g])
			}
			delete(byGroup, g)
		}
	}
}

// answer hands a peer's call to OnCall and queues the reply back to it.
func (t *Transport) answer(from, id uint64, payload []byte) {
	p := t.peers[from]
	if p == nil || t.cfg.OnCall == nil {
		return
	}
	t.cfg.OnCall(from, payload, func(reply []byte) {
		// A reply that finds no room is lost; the caller times out.
		if f := t.fate(Outbound{To: from, Kind: KindReply}); !f.Drop {
			p.send(item{kind: itemReply, group: id, data: reply, size: len(reply) + 16}, f.Delay)
		}
	})
}
