package raftactor

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/chronik-actor/chronik-actor/storage"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// router is an in-process transport between the replicas of one group:
// messages are copied (as the wire would) and can be cut between nodes.
type router struct {
	mu   sync.Mutex
	sys  *actor.ActorSystem
	pids map[uint64]*actor.PID
	reps map[uint64]*Replica
	cut  map[[2]uint64]bool

	snapshots int // snapshots streamed
}

type routerEnd struct {
	r    *router
	from uint64
}

func (e routerEnd) Send(group uint64, msgs []*pb.Message) {
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	for _, m := range msgs {
		to := m.GetTo()
		pid, rep := e.r.pids[to], e.r.reps[to]
		if pid == nil || e.r.cut[[2]uint64{e.from, to}] || !rep.AcceptStep() {
			continue
		}
		e.r.sys.Root.Send(pid, &Step{Msgs: []*pb.Message{proto.Clone(m).(*pb.Message)}})
	}
}

// SendSnapshot streams the body through a pipe into the receiver's
// ReceiveSnapshot, as the cluster transport does over its own connection.
func (e routerEnd) SendSnapshot(group uint64, m *pb.Message, body func(io.Writer) error) {
	e.r.mu.Lock()
	to := m.GetTo()
	pid, rep, from := e.r.pids[to], e.r.reps[to], e.r.pids[e.from]
	cut := e.r.cut[[2]uint64{e.from, to}]
	e.r.mu.Unlock()
	go func() {
		ok := false
		if pid != nil && !cut {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(body(pw)) }()
			mc := proto.Clone(m).(*pb.Message)
			if err := rep.ReceiveSnapshot(mc, pr); err == nil && rep.AcceptStep() {
				e.r.sys.Root.Send(pid, &Step{Msgs: []*pb.Message{mc}})
				ok = true
			}
			pr.Close()
		}
		e.r.mu.Lock()
		e.r.snapshots++
		e.r.mu.Unlock()
		e.r.sys.Root.Send(from, &SnapshotStatus{To: to, OK: ok})
	}()
}

// Quiesce delivers a leader's quiesce notice, unless the link is cut.
func (e routerEnd) Quiesce(group, to, term, commit uint64) {
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	if pid := e.r.pids[to]; pid != nil && !e.r.cut[[2]uint64{e.from, to}] {
		e.r.sys.Root.Send(pid, &Quiesce{From: e.from, Term: term, Commit: commit})
	}
}

// isolate cuts every link to and from id; heal restores them all.
func (rt *router) isolate(id uint64, ids []uint64) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, o := range ids {
		rt.cut[[2]uint64{id, o}], rt.cut[[2]uint64{o, id}] = true, true
	}
}

func (rt *router) heal() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.cut = map[[2]uint64]bool{}
}

// durableCheck is a Partition that asserts, at every apply, that the
// entry is already in the node's Pebble DB: the raft rule that only
// persisted and committed entries are applied, checked on followers too.
type durableCheck struct {
	*Partition
	t     *testing.T
	db    *storage.DB
	group uint64
}

func (d durableCheck) Apply(index, term uint64, data []byte) any {
	k := binary.BigEndian.AppendUint64(append(storage.GroupPrefix(d.group), "/entry/"...), index)
	if _, err := d.db.Get(k); err != nil {
		d.t.Errorf("entry %d applied before it was persisted: %v", index, err)
	}
	return d.Partition.Apply(index, term, data)
}

type groupNode struct {
	id  uint64
	sys *actor.ActorSystem
	db  *storage.DB
	sm  *Partition
	r   *Replica
	pid *actor.PID
}

// threeVoters starts one group on nodes 1-3, ticked every 10 ms.
func threeVoters(t *testing.T) (*router, map[uint64]*groupNode, *actor.PID, <-chan *Result) {
	return votersWith(t, func(*Config, *PartitionConfig) {})
}

// votersWith is threeVoters with the replicas' and partitions' configs
// adjusted by tune.
func votersWith(t *testing.T, tune func(*Config, *PartitionConfig)) (*router, map[uint64]*groupNode, *actor.PID, <-chan *Result) {
	t.Helper()
	ids := []uint64{1, 2, 3}
	sys := newSystem()
	rt := &router{sys: sys, pids: map[uint64]*actor.PID{}, reps: map[uint64]*Replica{}, cut: map[[2]uint64]bool{}}
	nodes := map[uint64]*groupNode{}
	dir := t.TempDir()
	for _, id := range ids {
		db := openDB(t, filepath.Join(dir, fmt.Sprint(id), "db"))
		rc := Config{Group: testGroup, NodeID: id, Voters: ids, DB: db, Log: quietLogger(), Transport: routerEnd{rt, id}}
		pc := PartitionConfig{Group: testGroup, Dir: filepath.Join(dir, fmt.Sprint(id), "p"), DB: db}
		tune(&rc, &pc)
		sm, applied, err := OpenPartition(pc)
		if err != nil {
			t.Fatal(err)
		}
		rc.Applied, rc.SM = applied, durableCheck{Partition: sm, t: t, db: db, group: testGroup}
		r, err := NewReplica(rc)
		if err != nil {
			t.Fatal(err)
		}
		nodes[id] = &groupNode{id: id, sys: sys, db: db, sm: sm, r: r}
	}
	rt.mu.Lock()
	for id, n := range nodes {
		n.pid = sys.Root.Spawn(n.r.Props())
		rt.pids[id], rt.reps[id] = n.pid, n.r
	}
	rt.mu.Unlock()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(peerTick)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				for _, n := range nodes {
					sys.Root.Send(n.pid, &Tick{})
				}
			}
		}
	}()
	rpid, results := spawnCollector(sys, nil)
	t.Cleanup(func() {
		close(stop)
		<-done
		for _, n := range nodes {
			_ = sys.Root.StopFuture(n.pid).Wait()
		}
		sys.Shutdown()
		for _, n := range nodes {
			n.db.Close()
		}
	})
	return rt, nodes, rpid, results
}

func leaderOf(nodes map[uint64]*groupNode, except uint64) *groupNode {
	for id, n := range nodes {
		if id != except && n.r.LeaderReady() {
			return n
		}
	}
	return nil
}

func waitLeader(t *testing.T, nodes map[uint64]*groupNode, except uint64) *groupNode {
	t.Helper()
	var l *groupNode
	wait.For(t, 10*time.Second, func() error {
		if l = leaderOf(nodes, except); l == nil {
			return fmt.Errorf("no ready leader")
		}
		return nil
	})
	return l
}

// sameLogs waits until every node's log holds the same batches, byte for
// byte, up to the same high watermark.
func sameLogs(t *testing.T, nodes map[uint64]*groupNode, hw int64) {
	t.Helper()
	wait.For(t, 10*time.Second, func() error {
		for id, n := range nodes {
			if got := n.sm.View().HighWatermark(); got != hw {
				return fmt.Errorf("node %d at high watermark %d, want %d", id, got, hw)
			}
		}
		return nil
	})
	var ref []byte
	for id, n := range nodes {
		v := n.sm.View()
		data, err := v.Read(v.LogStartOffset(), 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = data
		} else if !bytes.Equal(ref, data) {
			t.Fatalf("node %d's log differs from another replica's", id)
		}
	}
}

func produceAt(t *testing.T, n *groupNode, rpid *actor.PID, results <-chan *Result, tag string, count int) []*ProduceResult {
	t.Helper()
	for i := 0; i < count; i++ {
		n.sys.Root.Send(n.pid, &Propose{Data: EncodeProduce(testBatch(fmt.Sprintf("%s%d", tag, i), 3)), ReplyTo: rpid, Token: fmt.Sprintf("%s%d", tag, i)})
	}
	got := waitResults(t, results, count)
	out := make([]*ProduceResult, 0, count)
	for i := 0; i < count; i++ {
		out = append(out, produceResult(t, got[fmt.Sprintf("%s%d", tag, i)]))
	}
	return out
}

// Three voters: a leader is elected, every acknowledged batch is on every
// replica at the same offsets with the same bytes, and followers apply
// only what they persisted (durableCheck).
func TestThreeVotersReplicate(t *testing.T) {
	_, nodes, rpid, results := threeVoters(t)
	l := waitLeader(t, nodes, 0)
	res := produceAt(t, l, rpid, results, "a", 30)
	last := res[len(res)-1]
	sameLogs(t, nodes, last.BaseOffset+3)
	for id, n := range nodes {
		if id != l.id && n.r.LeaderReady() {
			t.Fatalf("node %d also claims leadership", id)
		}
		if n.r.Leader() != l.id {
			t.Fatalf("node %d names %d as leader, want %d", id, n.r.Leader(), l.id)
		}
	}
	// Proposals to a follower are refused, never forwarded.
	var f *groupNode
	for id, n := range nodes {
		if id != l.id {
			f = n
		}
	}
	l.sys.Root.Send(f.pid, &Propose{Data: EncodeProduce(testBatch("f", 1)), ReplyTo: rpid, Token: "f"})
	if r := waitResults(t, results, 1)["f"]; r.Err != ErrNotLeader {
		t.Fatalf("proposal to a follower: %v, want ErrNotLeader", r.Err)
	}
}

// The leader cut off from both followers acknowledges nothing; the
// majority elects a new leader and goes on; after the heal the old
// leader's uncommitted entries are gone and the logs are identical.
func TestCutOffLeaderLosesItsUncommittedEntries(t *testing.T) {
	rt, nodes, rpid, results := threeVoters(t)
	old := waitLeader(t, nodes, 0)
	res := produceAt(t, old, rpid, results, "before", 5)
	committed := res[len(res)-1].BaseOffset + 3
	sameLogs(t, nodes, committed)

	rt.isolate(old.id, []uint64{1, 2, 3})
	for i := 0; i < 5; i++ {
		old.sys.Root.Send(old.pid, &Propose{Data: EncodeProduce(testBatch("lost", 2)), ReplyTo: rpid, Token: fmt.Sprint("lost", i)})
	}
	nl := waitLeader(t, nodes, old.id)
	// The isolated leader steps down (CheckQuorum) and answers its
	// proposals NOT_LEADER: none was acknowledged. Taken before producing
	// to the new leader: the answers share one channel.
	got := waitResults(t, results, 5)
	for tok, r := range got {
		if r.Err == nil {
			t.Fatalf("%v acknowledged on the cut-off side", tok)
		}
	}
	after := produceAt(t, nl, rpid, results, "after", 5)
	rt.heal()
	sameLogs(t, nodes, after[len(after)-1].BaseOffset+3)
	if hw := old.sm.View().HighWatermark(); hw != after[len(after)-1].BaseOffset+3 {
		t.Fatalf("old leader at %d", hw)
	}
}

// A follower cut off while the leader writes and trims its raft log past
// it (a tiny retention budget) is caught up by a snapshot: the leader's
// segment files streamed and installed, after which the follower's log
// holds the same bytes and goes on applying what comes next.
func TestLaggingFollowerCatchesUpThroughSnapshot(t *testing.T) {
	rt, nodes, rpid, results := votersWith(t, func(c *Config, p *PartitionConfig) {
		c.RetainLogBytes = 1
		c.CheckpointEvery = 20 * time.Millisecond
		p.CheckpointBytes = 1
		p.Log.SegmentBytes = 4 << 10 // several segments to stream
	})
	l := waitLeader(t, nodes, 0)
	produceAt(t, l, rpid, results, "early", 10)
	var lag *groupNode
	for id, n := range nodes {
		if id != l.id {
			lag = n
			break
		}
	}
	rt.isolate(lag.id, []uint64{1, 2, 3})
	res := produceAt(t, l, rpid, results, "while-away", 200)
	// The leader trims past the follower's match once it checkpoints.
	wait.For(t, 10*time.Second, func() error {
		var cut uint64 // what the follower had when it was cut off
		st := l.r.GroupStatus()
		if st == nil {
			return fmt.Errorf("no leader status")
		}
		for _, v := range st.Voters {
			if v.ID == lag.id {
				cut = v.Match
			}
		}
		v, err := l.db.Get(append(storage.GroupPrefix(testGroup), "/truncated"...))
		if err != nil {
			return err
		}
		var tr struct{ Index uint64 }
		if err := json.Unmarshal(v, &tr); err != nil {
			return err
		}
		if tr.Index <= cut {
			return fmt.Errorf("leader's log trimmed to %d, the follower left at %d", tr.Index, cut)
		}
		return nil
	})
	rt.heal()
	hw := res[len(res)-1].BaseOffset + 3
	sameLogs(t, nodes, hw)
	rt.mu.Lock()
	n := rt.snapshots
	rt.mu.Unlock()
	if n == 0 {
		t.Fatal("the follower caught up without a snapshot: the test did not trim past it")
	}
	if segs := len(lag.sm.View().Segments()); segs < 2 {
		t.Fatalf("follower holds %d segments", segs)
	}
	after := produceAt(t, l, rpid, results, "after", 5)
	sameLogs(t, nodes, after[len(after)-1].BaseOffset+3)
}

// An idle group stops ticking, all three replicas; a write wakes it and
// is replicated as before; it goes quiet again after.
func TestIdleGroupQuiesces(t *testing.T) {
	_, nodes, rpid, results := threeVoters(t)
	l := waitLeader(t, nodes, 0)
	allQuiet := func() error {
		for id, n := range nodes {
			if !n.r.Quiesced() {
				return fmt.Errorf("node %d still ticking", id)
			}
		}
		return nil
	}
	wait.For(t, 10*time.Second, allQuiet)
	if !l.r.Quiesced() {
		t.Fatal("leader ticking")
	}
	res := produceAt(t, l, rpid, results, "wake", 3)
	sameLogs(t, nodes, res[len(res)-1].BaseOffset+3)
	wait.For(t, 10*time.Second, allQuiet)
}

// peerTick is the test clock of the peer groups. With ElectionTick 5 a
// leader that misses a quorum's answers for five ticks steps down
// (CheckQuorum): at 10 ms that was 50 ms, which one fsync on a loaded
// 2-core machine under -race can take, and a test then saw a leadership
// change it did not cause. 25 ms keeps elections quick and out of reach
// of such stalls.
const peerTick = 25 * time.Millisecond
