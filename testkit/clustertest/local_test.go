package clustertest

import (
	"slices"
	"testing"
	"time"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// A new cluster elects a leader for a topic with replication factor 3;
// what is produced with acks=all is read back in order; Leader and
// Followers agree with the replica set.
func TestLocalClusterElectsAndServes(t *testing.T) {
	c := testkit.NewCluster(t, 3)
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
}
