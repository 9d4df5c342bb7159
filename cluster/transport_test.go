package cluster

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/testkit/loopback"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

type inbox struct {
	mu     sync.Mutex
	got    map[uint64][]uint64 // group -> message indexes, in arrival order
	calls  int
	leader []Announcement
	unr    int
}

func (b *inbox) deliver(group uint64, msgs []*pb.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	for _, m := range msgs {
		b.got[group] = append(b.got[group], m.GetIndex())
	}
}

func freeAddr(t *testing.T) string { return loopback.Addr(t) }

func startPair(t *testing.T) (a, b *Transport, ib *inbox, ia *inbox, addrs map[uint64]string) {
	t.Helper()
	addrs = map[uint64]string{1: freeAddr(t), 2: freeAddr(t)}
	ia, ib = &inbox{got: map[uint64][]uint64{}}, &inbox{got: map[uint64][]uint64{}}
	start := func(id uint64, in *inbox) *Transport {
		tr, err := StartTransport(TransportConfig{NodeID: id, Addr: addrs[id], Peers: addrs, Deliver: in.deliver,
			OnLeader:      func(_ uint64, an Announcement) { in.mu.Lock(); in.leader = append(in.leader, an); in.mu.Unlock() },
			OnUnreachable: func(uint64, uint64) { in.mu.Lock(); in.unr++; in.mu.Unlock() }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Close)
		return tr
	}
	return start(1, ia), start(2, ib), ib, ia, addrs
}

func msg(to, index uint64) *pb.Message {
	return &pb.Message{To: &to, Type: pb.MsgApp.Enum(), Index: &index, Entries: []*pb.Entry{{Data: make([]byte, 100)}}}
}

// Messages of many groups reach the peer in order per group, batched into
// few deliveries; announcements arrive too.
func TestTransportDeliversInOrderPerGroup(t *testing.T) {
	a, _, ib, _, _ := startPair(t)
	wait.For(t, 5*time.Second, func() error {
		if !a.Connected(2) {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	for i := uint64(0); i < 1000; i++ {
		a.Send(i%10, []*pb.Message{msg(2, i)})
	}
	a.Announce(Announcement{Group: 7, Leader: 1, Term: 3})
	wait.For(t, 5*time.Second, func() error {
		ib.mu.Lock()
		defer ib.mu.Unlock()
		n := 0
		for _, v := range ib.got {
			n += len(v)
		}
		if n != 1000 || len(ib.leader) != 1 {
			return fmt.Errorf("%d messages, %d announcements", n, len(ib.leader))
		}
		return nil
	})
	ib.mu.Lock()
	defer ib.mu.Unlock()
	for g, idx := range ib.got {
		for i := 1; i < len(idx); i++ {
			if idx[i] <= idx[i-1] {
				t.Fatalf("group %d out of order: %v", g, idx)
			}
		}
	}
	if ib.calls >= 1000 {
		t.Fatalf("%d deliveries for 1000 messages: frames do not batch", ib.calls)
	}
	if an := ib.leader[0]; an != (Announcement{Group: 7, Leader: 1, Term: 3}) {
		t.Fatalf("announcement %+v", an)
	}
}

// A peer that is down: sends are dropped and reported, never blocked; once
// the peer is back the connection is re-dialed and messages flow again.
func TestTransportPeerDownAndBack(t *testing.T) {
	a, b, _, ia, addrs := startPair(t)
	wait.For(t, 5*time.Second, func() error {
		if !a.Connected(2) {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	b.Close()
	wait.For(t, 5*time.Second, func() error {
		a.Send(1, []*pb.Message{msg(2, 1)})
		ia.mu.Lock()
		defer ia.mu.Unlock()
		if ia.unr == 0 {
			return fmt.Errorf("no unreachable report")
		}
		return nil
	})
	start := time.Now()
	for i := 0; i < 100000; i++ {
		a.Send(1, []*pb.Message{msg(2, uint64(i))})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("sending to a down peer took %v", d)
	}
	ib2 := &inbox{got: map[uint64][]uint64{}}
	b2, err := StartTransport(TransportConfig{NodeID: 2, Addr: addrs[2], Peers: addrs, Deliver: ib2.deliver})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	wait.For(t, 5*time.Second, func() error {
		a.Send(1, []*pb.Message{msg(2, 1)})
		ib2.mu.Lock()
		defer ib2.mu.Unlock()
		if len(ib2.got[1]) == 0 {
			return fmt.Errorf("nothing after restart")
		}
		return nil
	})
}

// Garbage on the raft port closes that connection and nothing else.
func TestTransportRefusesGarbage(t *testing.T) {
	a, _, ib, _, addrs := startPair(t)
	c, err := net.Dial("tcp", addrs[2])
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("garbage connection left open")
	}
	c.Close()
	wait.For(t, 5*time.Second, func() error {
		a.Send(3, []*pb.Message{msg(2, 9)})
		ib.mu.Lock()
		defer ib.mu.Unlock()
		if len(ib.got[3]) == 0 {
			return fmt.Errorf("peer stopped delivering")
		}
		return nil
	})
}

// A call reaches the peer's OnCall and its reply comes back; a call to a
// peer that is down fails at once or by its timeout, never hangs.
func TestTransportCall(t *testing.T) {
	addrs := map[uint64]string{1: freeAddr(t), 2: freeAddr(t)}
	a, err := StartTransport(TransportConfig{NodeID: 1, Addr: addrs[1], Peers: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := StartTransport(TransportConfig{NodeID: 2, Addr: addrs[2], Peers: addrs,
		OnCall: func(from uint64, p []byte, reply func([]byte)) { go reply(append([]byte(fmt.Sprint(from, ":")), p...)) }})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, func() error {
		if !a.Connected(2) || !b.Connected(1) {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	got := make(chan string, 1)
	a.Call(2, []byte("ping"), 5*time.Second, func(r []byte, err error) { got <- fmt.Sprint(string(r), err) })
	if r := <-got; r != "1:ping<nil>" {
		t.Fatalf("reply %q", r)
	}
	b.Close()
	errs := make(chan error, 1)
	wait.For(t, 5*time.Second, func() error {
		if a.Connected(2) {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	a.Call(2, []byte("ping"), 5*time.Second, func(_ []byte, err error) { errs <- err })
	if err := <-errs; err != ErrPeerUnreachable {
		t.Fatalf("call to a down peer: %v", err)
	}
}

// A call outstanding when the transport closes is answered ErrClosed at
// once, not after its timeout; a call after Close fails the same way.
func TestTransportCloseAnswersCalls(t *testing.T) {
	addrs := map[uint64]string{1: freeAddr(t), 2: freeAddr(t)}
	a, err := StartTransport(TransportConfig{NodeID: 1, Addr: addrs[1], Peers: addrs})
	if err != nil {
		t.Fatal(err)
	}
	b, err := StartTransport(TransportConfig{NodeID: 2, Addr: addrs[2], Peers: addrs,
		OnCall: func(uint64, []byte, func([]byte)) {}}) // never replies
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	wait.For(t, 5*time.Second, func() error {
		if !a.Connected(2) {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	errs := make(chan error, 2)
	a.Call(2, []byte("ping"), time.Minute, func(_ []byte, err error) { errs <- err })
	start := time.Now()
	a.Close()
	if err := <-errs; err != ErrClosed || time.Since(start) > 5*time.Second {
		t.Fatalf("outstanding call: %v after %v, want ErrClosed at once", err, time.Since(start))
	}
	a.Call(2, []byte("ping"), time.Minute, func(_ []byte, err error) { errs <- err })
	if err := <-errs; err != ErrClosed {
		t.Fatalf("call after Close: %v", err)
	}
}
