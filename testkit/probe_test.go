package testkit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/chronik-actor/chronik-actor/actors"
	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// probeNode starts a single in-process node with topic (one partition)
// and returns it with that partition's replica actor.
func probeNode(t *testing.T, topic string) (*Broker, *actor.PID) {
	t.Helper()
	SkipUnlessChronik(t, "probes talk to chronik-actor's actors")
	b := StartBroker(t)
	CreateTopic(t, b.Addr(), topic, 1, nil)
	var pid *actor.PID
	wait.For(t, 10*time.Second, func() error {
		if pid = b.Node().ReplicaPID(topic, 0); pid == nil {
			return errors.New("no replica of partition 0 yet")
		}
		return nil
	})
	return b, pid
}

// TestProbeProposeToReplica: a probe scripts a Propose to a partition
// replica and gets its Result: the batch applied at offset 0, the next at
// offset 2 (after the first batch's two records), and nothing else.
func TestProbeProposeToReplica(t *testing.T) {
	b, replica := probeNode(t, "probe-propose")
	p := NewProbe(t, b.Node().ActorSystem())
	for _, want := range []int64{0, 2} {
		batch := protocol.BuildBatch([]protocol.Record{{Value: []byte("a")}, {Value: []byte("b")}}, time.Now().UnixMilli())
		p.Send(replica, &raftactor.Propose{Data: raftactor.EncodeProduce(batch), ReplyTo: p.PID(), Token: want})
		res := ExpectMsg[*raftactor.Result](p, 10*time.Second)
		if res.Err != nil {
			t.Fatalf("Propose: %v", res.Err)
		}
		pr, ok := res.Value.(*raftactor.ProduceResult)
		if !ok || pr.Err != nil || pr.BaseOffset != want || res.Token != want {
			t.Fatalf("Propose result %+v (value %+v), want base offset %d, token %d", res, res.Value, want, want)
		}
	}
	p.ExpectNoMsg(200 * time.Millisecond)
}

// TestProbeReplyAndFishFor: Reply answers the sender of the last message
// taken, and FishFor skips what does not match.
func TestProbeReplyAndFishFor(t *testing.T) {
	sys := actor.NewActorSystem()
	a, bp := NewProbe(t, sys), NewProbe(t, sys)
	a.Send(bp.PID(), "ping")
	if got := ExpectMsg[string](bp, time.Second); got != "ping" {
		t.Fatalf("got %q, want ping", got)
	}
	bp.Reply("pong")
	if got := ExpectMsg[string](a, time.Second); got != "pong" {
		t.Fatalf("got %q, want pong", got)
	}
	for i := range 5 {
		sys.Root.Send(a.PID(), i)
	}
	if got := a.FishFor(func(m any) bool { n, ok := m.(int); return ok && n >= 3 }, time.Second); got != 3 {
		t.Fatalf("FishFor: %v, want 3", got)
	}
	if got := ExpectMsg[int](a, time.Second); got != 4 {
		t.Fatalf("after FishFor: %v, want 4", got)
	}
	a.ExpectNoMsg(50 * time.Millisecond)
}

// TestInterceptReplicaDrop: while an interceptor drops the proposals sent
// to a partition's replica, a produce to it is answered REQUEST_TIMED_OUT
// at its timeout (and the interceptor saw the proposal); once removed, a
// produce is acknowledged. A delay instead makes the produce take at least
// that long.
func TestInterceptReplicaDrop(t *testing.T) {
	const topic = "probe-intercept"
	b, replica := probeNode(t, topic)
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(0, 12) // v13 names topics by id
	cl := NewClient(t, b.Addr(), kgo.MaxVersions(versions))
	produce := func(v string) (kmsg.ProduceResponseTopicPartition, time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req := produceRequest(topic, 0, -1, rawBatch(-1, -1, -1, time.Now().UnixMilli(), []byte(v)))
		req.TimeoutMillis = 1000
		start := time.Now()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("Produce %s: %v", v, err)
		}
		return producePartition(t, resp), time.Since(start)
	}
	if p, _ := produce("before"); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("produce before intercepting: %v at %d, want success at 0", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}

	var dropped atomic.Int64
	remove := Intercept(t, b.Node(), replica, func(msg any, _ *actor.PID) actors.Verdict {
		if _, ok := msg.(*raftactor.Propose); ok {
			dropped.Add(1)
			return actors.Verdict{Drop: true}
		}
		return actors.Verdict{}
	})
	if p, _ := produce("dropped"); p.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("produce with the replica's proposals dropped: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(p.ErrorCode))
	}
	if dropped.Load() == 0 {
		t.Fatal("the interceptor saw no Propose")
	}
	remove()
	if p, _ := produce("after"); p.ErrorCode != 0 || p.BaseOffset != 1 {
		t.Fatalf("produce after removing the interceptor: %v at %d, want success at 1", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}

	const d = 300 * time.Millisecond
	Intercept(t, b.Node(), replica, func(msg any, _ *actor.PID) actors.Verdict {
		if _, ok := msg.(*raftactor.Propose); ok {
			return actors.Verdict{Delay: d}
		}
		return actors.Verdict{}
	})
	p, took := produce("delayed")
	if p.ErrorCode != 0 || p.BaseOffset != 2 {
		t.Fatalf("produce with proposals delayed: %v at %d, want success at 2", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if took < d {
		t.Fatalf("produce with proposals delayed %v took %v", d, took)
	}
}

// TestProbeClusterReplicas: probes on the nodes of an in-process cluster
// script messages to the replicas of one partition: a follower refuses a
// Propose with ErrNotLeader, and the leader, asked to hand over, names
// the follower it hands to, which then leads.
func TestProbeClusterReplicas(t *testing.T) {
	SkipUnlessChronik(t, "probes talk to chronik-actor's actors")
	c := NewCluster(t, 3)
	const topic = "probe-cluster"
	CreateClusterTopic(t, c, topic, 1, 3)
	leader := c.WaitForLeader(topic, 0)
	follower := c.Followers(topic, 0)[0]

	fb := c.Broker(follower)
	fp := NewProbe(t, fb.ActorSystem())
	batch := protocol.BuildBatch([]protocol.Record{{Value: []byte("x")}}, time.Now().UnixMilli())
	fp.Send(fb.ReplicaPID(topic, 0), &raftactor.Propose{Data: raftactor.EncodeProduce(batch), ReplyTo: fp.PID()})
	if res := ExpectMsg[*raftactor.Result](fp, 5*time.Second); !errors.Is(res.Err, raftactor.ErrNotLeader) {
		t.Fatalf("Propose to follower %d: %+v, want ErrNotLeader", follower, res)
	}
	fp.ExpectNoMsg(100 * time.Millisecond)

	lb := c.Broker(leader)
	lp := NewProbe(t, lb.ActorSystem())
	lp.Send(lb.ReplicaPID(topic, 0), &raftactor.TransferLeadership{ReplyTo: lp.PID()})
	ts := ExpectMsg[*raftactor.TransferStarted](lp, 5*time.Second)
	if ts.To == 0 || ts.To == uint64(leader) {
		t.Fatalf("leader %d's transfer: %+v, want a follower named", leader, ts)
	}
	c.Eventually(10*time.Second, func() error {
		if l, ok := c.Leader(topic, 0); !ok || l != int32(ts.To) {
			return fmt.Errorf("leader %d (known %v), want %d", l, ok, ts.To)
		}
		return nil
	})
}

// TestNodeHooks: the node's testkit hooks find its actors: the
// controller, a connection per open client connection, a consumer
// group's actor once the group is in use, and no replica of a partition
// that does not exist.
func TestNodeHooks(t *testing.T) {
	b, _ := probeNode(t, "probe-hooks")
	n := b.Node()
	if n.ControllerPID() == nil {
		t.Fatal("no controller PID")
	}
	if pid := n.ReplicaPID("probe-hooks", 7); pid != nil {
		t.Fatalf("replica of a partition that does not exist: %v", pid)
	}
	if pid := n.GroupPID("probe-group"); pid != nil {
		t.Fatalf("actor of a group never used: %v", pid)
	}
	cl := NewClient(t, b.Addr(), kgo.ConsumerGroup("probe-group"), kgo.ConsumeTopics("probe-hooks"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cl.PollFetches(ctx)
	wait.For(t, 15*time.Second, func() error {
		if n.GroupPID("probe-group") == nil {
			return errors.New("no actor for probe-group yet")
		}
		if len(n.ConnPIDs()) == 0 {
			return errors.New("no connection actors")
		}
		return nil
	})
}
