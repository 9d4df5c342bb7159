package cluster

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// switchable is a NetFault a test changes while the transports run.
type switchable struct {
	mu   sync.Mutex
	f    func(Outbound) Fate
	seen []Outbound
}

func (s *switchable) fate(o Outbound) Fate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.Kind != KindKeepalive {
		s.seen = append(s.seen, o)
	}
	if s.f == nil {
		return Fate{}
	}
	return s.f(o)
}

func (s *switchable) set(f func(Outbound) Fate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.f = f
}

func startFaultyPair(t *testing.T, fault NetFault) (a, b *Transport, ia, ib *inbox) {
	t.Helper()
	addrs := map[uint64]string{1: freeAddr(t), 2: freeAddr(t)}
	ia, ib = &inbox{got: map[uint64][]uint64{}}, &inbox{got: map[uint64][]uint64{}}
	start := func(id uint64, in *inbox) *Transport {
		tr, err := StartTransport(TransportConfig{NodeID: id, Addr: addrs[id], Peers: addrs, Deliver: in.deliver, Fault: fault,
			OnLeader:      func(_ uint64, an Announcement) { in.mu.Lock(); in.leader = append(in.leader, an); in.mu.Unlock() },
			OnUnreachable: func(uint64, uint64) { in.mu.Lock(); in.unr++; in.mu.Unlock() }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Close)
		return tr
	}
	a, b = start(1, ia), start(2, ib)
	wait.For(t, 5*time.Second, func() error {
		if !a.Connected(2) || !b.Connected(1) {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	return a, b, ia, ib
}

func (b *inbox) count(group uint64) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got[group])
}

// The hook sees each raft message with its sender, peer, group and type;
// what it drops is lost silently (no Unreachable: a network that loses a
// packet tells nobody), the rest arrives.
func TestTransportFaultDrops(t *testing.T) {
	sw := &switchable{}
	sw.set(func(o Outbound) Fate { return Fate{Drop: o.Kind == KindRaft && o.Group == 1} })
	a, _, ia, ib := startFaultyPair(t, sw.fate)
	for i := uint64(1); i <= 100; i++ {
		a.Send(1, []*pb.Message{msg(2, i)})
		a.Send(2, []*pb.Message{msg(2, i)})
	}
	wait.For(t, 5*time.Second, func() error {
		if n := ib.count(2); n != 100 {
			return fmt.Errorf("group 2: %d of 100 delivered", n)
		}
		return nil
	})
	if n := ib.count(1); n != 0 {
		t.Fatalf("group 1: %d messages delivered, all were dropped", n)
	}
	ia.mu.Lock()
	unr := ia.unr
	ia.mu.Unlock()
	if unr != 0 {
		t.Fatalf("%d unreachable reports for dropped messages", unr)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	var raft int
	for _, o := range sw.seen {
		if o.Kind == KindRaft {
			raft++
			if o.From != 1 || o.To != 2 || o.Type != "MsgApp" || (o.Group != 1 && o.Group != 2) {
				t.Fatalf("hook saw %+v", o)
			}
		}
	}
	if raft != 200 {
		t.Fatalf("hook saw %d raft messages, 200 were sent", raft)
	}
}

// A delay holds every message back by at least that long and keeps the
// order of one peer's items, even when the delay is lifted while some
// are held.
func TestTransportFaultDelays(t *testing.T) {
	const d = 300 * time.Millisecond
	sw := &switchable{}
	sw.set(func(o Outbound) Fate { return Fate{Delay: d} })
	a, _, _, ib := startFaultyPair(t, sw.fate)
	start := time.Now()
	for i := uint64(1); i <= 50; i++ {
		a.Send(1, []*pb.Message{msg(2, i)})
	}
	sw.set(nil)
	for i := uint64(51); i <= 100; i++ {
		a.Send(1, []*pb.Message{msg(2, i)})
	}
	var firstAt time.Duration
	wait.For(t, 5*time.Second, func() error {
		n := ib.count(1)
		if n > 0 && firstAt == 0 {
			firstAt = time.Since(start)
		}
		if n != 100 {
			return fmt.Errorf("%d of 100 delivered", n)
		}
		return nil
	})
	if firstAt < d {
		t.Fatalf("first message delivered %v after sending, delay %v", firstAt, d)
	}
	ib.mu.Lock()
	defer ib.mu.Unlock()
	for i, idx := range ib.got[1] {
		if idx != uint64(i+1) {
			t.Fatalf("delivered out of order: %v", ib.got[1])
		}
	}
}

// Dropping a node's keepalives and everything else it sends makes its
// peer see it down, with the TCP connection still open, as behind a
// firewall; lifting the cut brings it back up.
func TestTransportFaultCutLiveness(t *testing.T) {
	var cut atomic.Bool
	fault := func(o Outbound) Fate { return Fate{Drop: cut.Load() && o.From == 1} }
	a, b, _, _ := startFaultyPair(t, fault)
	cut.Store(true)
	wait.For(t, 5*time.Second, func() error {
		if b.Connected(1) {
			return fmt.Errorf("node 2 still sees node 1 up")
		}
		return nil
	})
	if !a.Connected(2) {
		t.Fatal("node 1 sees node 2 down, but node 2's frames were never cut")
	}
	cut.Store(false)
	wait.For(t, 5*time.Second, func() error {
		if !b.Connected(1) {
			return fmt.Errorf("node 2 does not see node 1 again")
		}
		return nil
	})
}

// Faults, the admin-set hook: cut peers lose everything, the drop rate
// loses raft messages only and replays with its seed, the delay applies
// to all but keepalives; bad settings are refused and change nothing.
func TestFaultsSettings(t *testing.T) {
	var f Faults
	if fate := f.Fate(Outbound{To: 2, Kind: KindRaft}); fate != (Fate{}) {
		t.Fatalf("zero Faults: %+v", fate)
	}
	if err := f.Set(FaultSettings{Cut: []int32{3}, Drop: 0.5, Delay: "20ms", Seed: 7}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []ItemKind{KindRaft, KindCall, KindKeepalive, KindLeader} {
		if fate := f.Fate(Outbound{To: 3, Kind: k}); !fate.Drop {
			t.Fatalf("%v to a cut peer not dropped", k)
		}
	}
	if fate := f.Fate(Outbound{To: 2, Kind: KindKeepalive}); fate != (Fate{}) {
		t.Fatalf("keepalive to a peer not cut: %+v", fate)
	}
	if fate := f.Fate(Outbound{To: 2, Kind: KindCall}); fate != (Fate{Delay: 20 * time.Millisecond}) {
		t.Fatalf("call: %+v", fate)
	}
	draws := func() []bool {
		var out []bool
		for range 64 {
			out = append(out, f.Fate(Outbound{To: 2, Kind: KindRaft}).Drop)
		}
		return out
	}
	first := draws()
	drops := 0
	for _, d := range first {
		if d {
			drops++
		}
	}
	if drops < 16 || drops > 48 {
		t.Fatalf("%d of 64 dropped at rate 0.5", drops)
	}
	if err := f.Set(FaultSettings{Cut: []int32{3}, Drop: 0.5, Delay: "20ms", Seed: 7}); err != nil {
		t.Fatal(err)
	}
	if again := draws(); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatalf("the same seed drew %v, then %v", first, again)
	}
	for _, bad := range []FaultSettings{{Drop: 1.5}, {Drop: -0.1}, {Delay: "soon"}, {Delay: "-1s"}, {Cut: []int32{0}}} {
		if err := f.Set(bad); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
	if s := f.Settings(); s.Delay != "20ms" || s.Drop != 0.5 || len(s.Cut) != 1 {
		t.Fatalf("settings after refused ones: %+v", s)
	}
}
