package clustertest

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// The network faults on one shared cluster; each subtest has its own
// topic and heals what it did, so they stay independent.
func TestLocalClusterNetwork(t *testing.T) {
	c := testkit.NewCluster(t, 3)

	// A topic with replication factor 3 gets a leader; what is produced
	// with acks=all is read back in order; Leader and Followers agree.
	t.Run("ElectsAndServes", func(t *testing.T) {
		testkit.CreateClusterTopic(t, c, "basic", 1, 3)
		leader := c.WaitForLeader("basic", 0)
		if l, ok := c.Leader("basic", 0); !ok || l != leader {
			t.Fatalf("Leader says %d (%v), WaitForLeader %d", l, ok, leader)
		}
		followers := c.Followers("basic", 0)
		if len(followers) != 2 || slices.Contains(followers, leader) {
			t.Fatalf("followers %v of leader %d", followers, leader)
		}
		produce(t, producer(c), "basic", "v", 100, 30*time.Second)
		if got := readAll(t, c, "basic", 100); !slices.Equal(got, values("v", 100)) {
			t.Fatalf("read back %v", got)
		}
		c.Eventually(10*time.Second, func() error { return c.ReplicasAgree("basic", 0) })
	})

	// With 30% of raft messages lost the cluster still acknowledges
	// every write, and the replicas end up identical.
	t.Run("Drop", func(t *testing.T) {
		testkit.CreateClusterTopic(t, c, "lossy", 1, 3)
		c.Drop(0.3)
		defer c.Heal()
		produce(t, producer(c), "lossy", "v", 50, 60*time.Second)
		c.Eventually(30*time.Second, func() error { return c.ReplicasAgree("lossy", 0) })
		c.Heal()
		if got := readAll(t, c, "lossy", 50); !slices.Equal(got, values("v", 50)) {
			t.Fatalf("read back %v", got)
		}
	})

	// A delay of 30 ms on every link makes each acks=all write take at
	// least one round trip of it, and changes nothing else.
	t.Run("Delay", func(t *testing.T) {
		testkit.CreateClusterTopic(t, c, "slow", 1, 3)
		cl := producer(c)
		produce(t, cl, "slow", "warm", 1, 30*time.Second)
		const d = 30 * time.Millisecond
		c.Delay(d)
		defer c.Heal()
		start := time.Now()
		produce(t, cl, "slow", "v", 5, 30*time.Second)
		if took := time.Since(start); took < 5*2*d {
			t.Fatalf("5 acks=all writes took %v under a %v delay each way", took, d)
		}
		c.Heal()
		c.Eventually(10*time.Second, func() error { return c.ReplicasAgree("slow", 0) })
	})

	// Hook sees the raft messages with their ends and types, and what
	// it drops is lost: with every MsgApp to one follower dropped, that
	// follower stays behind while the other two acknowledge writes, and
	// catches up once the hook is gone.
	t.Run("Hook", func(t *testing.T) {
		testkit.CreateClusterTopic(t, c, "hooked", 1, 3)
		produce(t, producer(c), "hooked", "a", 10, 30*time.Second)
		c.Eventually(10*time.Second, func() error { return c.ReplicasAgree("hooked", 0) })
		leader := c.WaitForLeader("hooked", 0)
		behind := c.Followers("hooked", 0)[0]
		var mu sync.Mutex
		seen := map[string]int{}
		dropped := 0
		c.Hook(func(m testkit.NetMsg) testkit.Verdict {
			mu.Lock()
			defer mu.Unlock()
			seen[m.Type]++
			if m.From < 1 || m.From > 3 || m.To < 1 || m.To > 3 || m.From == m.To {
				t.Errorf("hook saw a message from %d to %d", m.From, m.To)
			}
			if m.Type == "MsgApp" && m.To == behind {
				dropped++
				return testkit.Verdict{Drop: true}
			}
			return testkit.Verdict{}
		})
		defer c.Heal()
		produce(t, producer(c), "hooked", "b", 10, 30*time.Second)
		got, err := c.ReadReplica(behind, "hooked", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.HighWatermark != 10 {
			t.Fatalf("node %d, all of whose MsgApps were dropped, is at high watermark %d, want 10", behind, got.HighWatermark)
		}
		lead, err := c.ReadReplica(leader, "hooked", 0)
		if err != nil || lead.HighWatermark != 20 {
			t.Fatalf("leader %d at high watermark %d (%v), want 20", leader, lead.HighWatermark, err)
		}
		mu.Lock()
		if dropped == 0 || seen["MsgApp"] <= dropped || seen["MsgAppResp"] == 0 {
			t.Errorf("hook saw %v and dropped %d MsgApps to node %d", seen, dropped, behind)
		}
		mu.Unlock()
		c.Hook(nil)
		c.Eventually(10*time.Second, func() error { return c.ReplicasAgree("hooked", 0) })
	})
}

// The leader cut off from the other two (its clients still reaching it)
// acknowledges nothing with acks=all; the other two elect a new leader
// and take writes; after the heal every replica holds the same records,
// and none of those the cut-off leader was sent.
func TestLocalClusterIsolatedLeader(t *testing.T) {
	c := testkit.NewCluster(t, 3)
	testkit.CreateClusterTopic(t, c, "iso", 1, 3)
	old := c.WaitForLeader("iso", 0)
	produce(t, producer(c), "iso", "before", 10, 30*time.Second)
	c.Isolate(old)

	// Sent to the cut-off leader alone, the way a client on its side of
	// the partition would, with acks=all: it must not acknowledge.
	for i := 0; i < 2; i++ {
		off, err := c.ProduceTo(old, "iso", 0, 2*time.Second, []byte(fmt.Sprint("lost-", i)))
		if err == nil {
			t.Fatalf("lost-%d acknowledged by the cut-off leader %d at offset %d", i, old, off)
		}
		if !errors.Is(err, kerr.NotLeaderForPartition) && !errors.Is(err, kerr.RequestTimedOut) {
			t.Fatalf("lost-%d on the cut-off leader: %v, want NOT_LEADER_OR_FOLLOWER or REQUEST_TIMED_OUT", i, err)
		}
		t.Logf("lost-%d on the cut-off leader: %v", i, err)
	}

	// The partition stops the keepalives too: each side sees the other
	// down, as behind a firewall.
	c.Eventually(10*time.Second, func() error {
		for _, id := range c.Nodes() {
			want := []int32{old}
			if id != old {
				want = slices.DeleteFunc(c.Nodes(), func(o int32) bool { return o == old })
			}
			if got, err := upSeenBy(c, id); err != nil || !slices.Equal(got, want) {
				return fmt.Errorf("node %d sees brokers %v up (%v), want %v", id, got, err, want)
			}
		}
		return nil
	})
	// Seeing no majority up, the cut-off node lists every broker in its
	// Metadata: a client that asked it first can still find the others.
	if got, err := brokersListed(c.Addr(old)); err != nil || !slices.Equal(got, c.Nodes()) {
		t.Fatalf("the cut-off node's Metadata lists brokers %v (%v), want all of %v", got, err, c.Nodes())
	}
	c.Eventually(10*time.Second, func() error {
		if l, ok := c.Leader("iso", 0); !ok || l == old {
			return fmt.Errorf("leader %d (%v): the majority has not elected", l, ok)
		}
		return nil
	})
	if l := c.WaitForLeader("iso", 0); l == old {
		t.Fatalf("the cut-off node %d still leads", old)
	}
	produce(t, producer(c), "iso", "after", 10, 30*time.Second)

	c.Heal()
	c.Eventually(30*time.Second, func() error { return c.ReplicasAgree("iso", 0) })
	want := append(values("before", 10), values("after", 10)...)
	if got := readAll(t, c, "iso", 20); !slices.Equal(got, want) {
		t.Fatalf("read back %v", got)
	}
	for _, id := range c.Nodes() {
		r, err := c.ReadReplica(id, "iso", 0)
		if err != nil || r.HighWatermark != 20 {
			t.Fatalf("node %d at high watermark %d (%v), want 20", id, r.HighWatermark, err)
		}
		if strings.Contains(string(r.Batches), "lost-") {
			t.Fatalf("node %d holds a record no one acknowledged", id)
		}
	}
}

// A follower killed while the others take writes comes back on its data
// dir and addresses and catches up; a graceful Stop of the leader hands
// the partition over and it too comes back.
func TestLocalClusterKillRestart(t *testing.T) {
	c := testkit.NewCluster(t, 3)
	testkit.CreateClusterTopic(t, c, "kr", 1, 3)
	leader := c.WaitForLeader("kr", 0)
	f := c.Followers("kr", 0)[0]
	cl := producer(c)
	produce(t, cl, "kr", "a", 50, 30*time.Second)
	c.Kill(f)
	produce(t, cl, "kr", "b", 50, 30*time.Second)
	c.Restart(f)
	c.Eventually(30*time.Second, func() error { return c.ReplicasAgree("kr", 0) })
	if r, err := c.ReadReplica(f, "kr", 0); err != nil || r.HighWatermark != 100 {
		t.Fatalf("restarted node %d at high watermark %d (%v), want 100", f, r.HighWatermark, err)
	}

	c.Stop(leader)
	if l := c.WaitForLeader("kr", 0); l == leader {
		t.Fatalf("node %d stopped, still named leader", leader)
	}
	produce(t, cl, "kr", "c", 10, 30*time.Second)
	c.Restart(leader)
	c.Eventually(30*time.Second, func() error { return c.ReplicasAgree("kr", 0) })
	want := append(append(values("a", 50), values("b", 50)...), values("c", 10)...)
	if got := readAll(t, c, "kr", 110); !slices.Equal(got, want) {
		t.Fatalf("read back %v", got)
	}
}

// A paused leader answers no Kafka request and its peers see it gone:
// the others elect and take writes. Resumed, it answers again, learns it
// was deposed, and catches up.
func TestLocalClusterPauseResume(t *testing.T) {
	c := testkit.NewCluster(t, 3)
	testkit.CreateClusterTopic(t, c, "pz", 1, 3)
	old := c.WaitForLeader("pz", 0)
	produce(t, producer(c), "pz", "a", 10, 30*time.Second)
	c.Pause(old)
	if err := probeApiVersions(c.Addr(old), 500*time.Millisecond); err == nil {
		t.Fatalf("paused node %d answered ApiVersions", old)
	}
	if l := c.WaitForLeader("pz", 0); l == old {
		t.Fatalf("paused node %d still named leader", old)
	}
	produce(t, producer(c), "pz", "b", 10, 30*time.Second)
	c.Resume(old)
	if err := probeApiVersions(c.Addr(old), 5*time.Second); err != nil {
		t.Fatalf("resumed node %d: %v", old, err)
	}
	c.Eventually(30*time.Second, func() error { return c.ReplicasAgree("pz", 0) })
	if got := readAll(t, c, "pz", 20); !slices.Equal(got, append(values("a", 10), values("b", 10)...)) {
		t.Fatalf("read back %v", got)
	}
}

// Restart waits out a port that is not free yet (here, held by another
// listener for a moment), and a start that failed on it leaves nothing
// running (TestMain's leak check).
func TestLocalClusterRestartWaitsForItsPorts(t *testing.T) {
	c := testkit.NewCluster(t, 3)
	c.Kill(3)
	for _, addr := range []string{c.Addr(3), raftAddr(t, c, 3)} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("hold %s: %v", addr, err)
		}
		release := time.AfterFunc(300*time.Millisecond, func() { ln.Close() })
		start := time.Now()
		c.Restart(3)
		release.Stop()
		ln.Close()
		if took := time.Since(start); took < 300*time.Millisecond {
			t.Fatalf("restarted in %v while %s was held for 300 ms", took, addr)
		}
		c.Kill(3)
	}
	c.Restart(3)
	testkit.CreateClusterTopic(t, c, "ports", 1, 3)
	produce(t, producer(c), "ports", "v", 5, 30*time.Second)
	c.Eventually(10*time.Second, func() error { return c.ReplicasAgree("ports", 0) })
}

// raftAddr is node id's raft address.
func raftAddr(t *testing.T, c *testkit.LocalCluster, id int32) string {
	t.Helper()
	for _, n := range c.Config(id).Nodes {
		if n.ID == id {
			return n.Raft
		}
	}
	t.Fatalf("node %d has no raft address", id)
	return ""
}
