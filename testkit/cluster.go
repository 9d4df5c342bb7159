package testkit

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is a chronik-actor cluster under test: n nodes with ids 1..n,
// either in this process with a simulated network between them
// (NewCluster) or as real child processes (NewProcessCluster). Scenarios
// and tests written against this interface run either way.
//
// Every method fails the test it was created for (t.Fatal) instead of
// returning an error, and may be called from the test's goroutine only.
// Everything it starts is stopped through t.Cleanup.
type Cluster interface {
	// Nodes lists the node ids, 1..n.
	Nodes() []int32
	// Addr is node id's Kafka address.
	Addr(id int32) string
	// Seeds is every node's Kafka address, comma-separated, for a client's
	// seed list.
	Seeds() string
	// Client is a franz-go client seeded with every node, closed at
	// cleanup; opts come after the defaults and so override them.
	Client(opts ...kgo.Opt) *kgo.Client

	// Partition splits the raft network into the given groups of node
	// ids: nodes in different groups no longer reach each other (nothing
	// passes, keepalives included, so they see each other down as behind
	// a firewall); a node named in no group is cut off from all. Kafka
	// clients still reach every node.
	Partition(groups ...[]int32)
	// Isolate cuts node id off from every other node.
	Isolate(id int32)
	// Heal undoes Partition, Isolate, Drop, Delay and Hook.
	Heal()
	// Drop loses each raft message between nodes with probability rate
	// (0 stops dropping), decided by the cluster's seeded random source.
	Drop(rate float64)
	// Delay holds each raft message between nodes for d before delivery
	// (and the calls and notices between them; keepalives are never
	// held), keeping the order of each link.
	Delay(d time.Duration)
	// Hook sees every raft message between nodes, after Partition and
	// Drop, and decides its fate; nil removes it.
	Hook(h func(m NetMsg) Verdict)

	// Kill stops node id abruptly, as kill -9 would: no leadership
	// hand-off, no final flush.
	Kill(id int32)
	// Stop stops node id gracefully, as SIGTERM does: it hands off its
	// leaderships first.
	Stop(id int32)
	// Restart starts a stopped or killed node again on its data dir and
	// addresses.
	Restart(id int32)
	// Pause freezes node id as SIGSTOP would: it neither sends nor
	// answers, on the raft network or to Kafka clients. Resume thaws it.
	Pause(id int32)
	Resume(id int32)

	// Leader is the node leading topic's partition p as the cluster's
	// Metadata reports it, and whether one is known.
	Leader(topic string, p int32) (int32, bool)
	// Followers are the other replicas of topic's partition p.
	Followers(topic string, p int32) []int32
	// WaitForLeader waits (up to the cluster's default deadline) until
	// partition p of topic has a leader that accepts writes, and returns
	// it.
	WaitForLeader(topic string, p int32) int32
	// Eventually retries f until it returns nil or d has passed, and then
	// fails the test with f's last error.
	Eventually(d time.Duration, f func() error)
	// Seed is the seed of the cluster's random choices (Drop, and any the
	// cluster makes itself); the ClusterSeed option replays it.
	Seed() int64
}

// NetMsg is one raft message between two nodes, as Hook sees it.
type NetMsg struct {
	From, To int32
	// Group is the raft group: 0 is the controller, others a partition.
	Group uint64
	// Type is the raft message type's name, e.g. "MsgApp", "MsgHeartbeat".
	Type string
}

// Verdict is a Hook's decision on one message.
type Verdict struct {
	Drop  bool          // lose it
	Delay time.Duration // deliver it this much later (ignored when Drop)
}
