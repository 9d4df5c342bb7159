package testkit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-actor/chronik-actor/actors"
	"github.com/chronik-actor/chronik-actor/cluster"
	"github.com/chronik-actor/chronik-actor/testkit/loopback"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// LocalCluster is a Cluster of n nodes in this process
// (actors.StartBroker), on loopback ports chosen at run time and data
// dirs under the test's temporary directory, with a simulated network
// between them: every node's raft transport asks one hub what to do with
// each thing it sends (cluster.Config.Network), which is how Partition,
// Isolate, Drop, Delay, Hook and Pause act. Kafka clients always reach
// every running node.
type LocalCluster struct {
	*clusterCore
	o     clusterOptions
	hub   *hub
	nodes []*localNode

	failMu    sync.Mutex
	failStops []string // storage failures the nodes reported (cluster.Config.FailStop)
}

type localNode struct {
	id     int32
	cfg    cluster.Config // before WithNodeConfig's tuning, which each start applies afresh
	b      *actors.Broker // nil while stopped or killed
	paused bool
}

var _ Cluster = (*LocalCluster)(nil)

// localTick is the raft clock of in-process clusters, a fifth of the
// production 100 ms: elections take 100-200 ms instead of 0.5-1 s, so a
// cluster forms and fails over quickly. WithNodeConfig may set another
// (cluster.Config.TickInterval).
const localTick = 20 * time.Millisecond

// NewCluster starts an n-node cluster in this process and returns once it
// has formed: every node names a controller and sees every node up. Its
// defaults for tests: replication factor min(3, n), one partition per
// topic, one __consumer_offsets partition, a 20 ms raft
// tick; ClusterOptions change them. Every node still running at the
// test's cleanup is killed (Kill, not Stop: a graceful stop is the
// test's to ask for), and its data dir removed with the test's temporary
// directory.
func NewCluster(t testing.TB, n int, opts ...ClusterOption) *LocalCluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("testkit: a cluster of %d nodes", n)
	}
	o := newClusterOptions(n, opts)
	dir := t.TempDir()
	var members []cluster.Node
	for id := int32(1); id <= int32(n); id++ {
		members = append(members, cluster.Node{ID: id, Kafka: loopback.Addr(t), Raft: loopback.Addr(t),
			Admin: loopback.Addr(t), DataDir: filepath.Join(dir, fmt.Sprintf("node%d", id))})
	}
	c := &LocalCluster{o: o}
	addrs, admins := make([]string, n), make([]string, n)
	for i, m := range members {
		addrs[i], admins[i] = m.Kafka, m.Admin
	}
	c.clusterCore = newClusterCore(t, o, addrs, admins, c.reachable)
	c.hub = newHub(c.seed)
	for _, m := range members {
		cfg := cluster.Default()
		cfg.NodeID, cfg.Nodes = m.ID, members
		cfg.ApplyNode()
		cfg.DefaultReplicationFactor, cfg.DefaultPartitions = o.rf, o.parts
		cfg.OffsetsPartitions = 1
		cfg.TickInterval = localTick
		cfg.Network = c.hub.fate
		id := m.ID
		cfg.FailStop = func(reason string, err error) { c.failStop(id, reason, err) }
		c.nodes = append(c.nodes, &localNode{id: m.ID, cfg: cfg})
	}
	t.Cleanup(c.cleanup)
	// All at once: each start waits for its peers' answers
	// (refuseIfWiped), so starting them one by one would be slower.
	errs := make(chan error, n)
	for _, nd := range c.nodes {
		go func() { errs <- c.start(nd) }()
	}
	var failed []error
	for range c.nodes {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		t.Fatalf("testkit: start cluster: %v", errors.Join(failed...))
	}
	c.waitFormed()
	return c
}

// start starts nd on its data dir and addresses. A restart may find a
// port not free yet (a client's socket the kernel gave that port to as
// its own end, say): that is retried until the cluster's deadline.
func (c *LocalCluster) start(nd *localNode) error {
	cfg := nd.cfg
	for _, tune := range c.o.tune {
		tune(&cfg)
	}
	log := c.o.log.With("node", nd.id)
	var b *actors.Broker
	var fatal error
	err := wait.Until(context.Background(), c.deadline, func() error {
		var err error
		b, err = actors.StartBroker(cfg, log)
		if err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			fatal = err
			return nil // not worth another try
		}
		return err
	})
	if fatal != nil {
		err = fatal
	}
	if err != nil {
		return fmt.Errorf("node %d: %w", nd.id, err)
	}
	nd.b = b
	return nil
}

func (c *LocalCluster) failStop(id int32, reason string, err error) {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	c.failStops = append(c.failStops, fmt.Sprintf("node %d: %s: %v", id, reason, err))
}

func (c *LocalCluster) cleanup() {
	c.close()
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		if nd.b == nil {
			continue
		}
		wg.Add(1)
		go func(b *actors.Broker) {
			defer wg.Done()
			_ = b.Kill()
		}(nd.b)
		nd.b = nil
	}
	wg.Wait()
	c.failMu.Lock()
	defer c.failMu.Unlock()
	for _, f := range c.failStops {
		c.t.Errorf("testkit: storage failure (fail-stop) %s", f)
	}
}

func (c *LocalCluster) node(id int32) *localNode {
	c.t.Helper()
	c.check(id)
	return c.nodes[id-1]
}

func (c *LocalCluster) reachable(id int32) bool {
	nd := c.nodes[id-1]
	return nd.b != nil && !nd.paused
}

// Broker is node id's running broker, nil while it is stopped or killed:
// for tests that look inside a node (its admin address, say).
func (c *LocalCluster) Broker(id int32) *actors.Broker { return c.node(id).b }

// AdminAddr is node id's admin HTTP address (/v1/cluster, /metrics).
func (c *LocalCluster) AdminAddr(id int32) string { return c.node(id).cfg.AdminAddr }

// DataDir is node id's data directory.
func (c *LocalCluster) DataDir(id int32) string { return c.node(id).cfg.DataDir }

// Config is node id's configuration as the testkit made it, before
// WithNodeConfig's tuning: its addresses, data dir, the cluster's nodes.
func (c *LocalCluster) Config(id int32) cluster.Config { return c.node(id).cfg }

// Partition splits the raft network into groups; see Cluster.
func (c *LocalCluster) Partition(groups ...[]int32) {
	c.t.Helper()
	for _, g := range groups {
		for _, id := range g {
			c.check(id)
		}
	}
	c.hub.partition(groups)
}

// Isolate cuts node id off from every other node.
func (c *LocalCluster) Isolate(id int32) {
	c.t.Helper()
	c.check(id)
	var rest []int32
	for _, o := range c.Nodes() {
		if o != id {
			rest = append(rest, o)
		}
	}
	c.hub.partition([][]int32{{id}, rest})
}

// Heal undoes Partition, Isolate, Drop, Delay and Hook (not Pause).
func (c *LocalCluster) Heal() { c.hub.heal() }

// Drop loses each raft message between nodes with probability rate.
func (c *LocalCluster) Drop(rate float64) {
	c.t.Helper()
	if !(rate >= 0 && rate <= 1) {
		c.t.Fatalf("testkit: Drop(%v): not a probability", rate)
	}
	c.hub.setDrop(rate)
}

// Delay holds everything between nodes but keepalives for d.
func (c *LocalCluster) Delay(d time.Duration) { c.hub.setDelay(d) }

// Hook sees every raft message between nodes (snapshots as "MsgSnap")
// after Partition, Pause and Drop, and decides its fate; nil removes it.
// It runs on the nodes' goroutines, concurrently: it must be safe for
// concurrent use and must not block (a Verdict's Delay is how to hold a
// message).
func (c *LocalCluster) Hook(h func(m NetMsg) Verdict) { c.hub.setHook(h) }

// Kill stops node id abruptly (actors.Broker.Kill): no leadership
// hand-off, no checkpoint, its sockets closed at once. In process,
// written data stays in the page cache: nothing unsynced is lost.
func (c *LocalCluster) Kill(id int32) {
	c.t.Helper()
	nd := c.running(id, "Kill")
	if err := nd.b.Kill(); err != nil {
		c.t.Errorf("testkit: kill node %d: %v", id, err)
	}
	c.stopped(nd)
}

// Stop stops node id gracefully (actors.Broker.Close, as SIGTERM).
func (c *LocalCluster) Stop(id int32) {
	c.t.Helper()
	nd := c.running(id, "Stop")
	if nd.paused {
		c.Resume(id) // as a stopped process acts on SIGTERM only once continued
	}
	if err := nd.b.Close(); err != nil {
		c.t.Errorf("testkit: stop node %d: %v", id, err)
	}
	c.stopped(nd)
}

func (c *LocalCluster) running(id int32, op string) *localNode {
	c.t.Helper()
	nd := c.node(id)
	if nd.b == nil {
		c.t.Fatalf("testkit: %s(%d): the node is not running", op, id)
	}
	return nd
}

func (c *LocalCluster) stopped(nd *localNode) {
	nd.b, nd.paused = nil, false
	c.hub.setPaused(nd.id, false)
}

// Restart starts a stopped or killed node again on its data dir and
// addresses, and returns once it answers ApiVersions.
func (c *LocalCluster) Restart(id int32) {
	c.t.Helper()
	nd := c.node(id)
	if nd.b != nil {
		c.t.Fatalf("testkit: Restart(%d): the node is running", id)
	}
	if err := c.start(nd); err != nil {
		c.t.Fatalf("testkit: restart: %v", err)
	}
	if err := waitAPIVersions(nd.cfg.KafkaAddr, c.deadline, nil); err != nil {
		c.t.Fatalf("testkit: restarted node %d: %v", id, err)
	}
}

// Pause freezes node id: the hub drops its raft traffic both ways (its
// peers see it down), and the broker stops reading and writing its
// client connections, accepting new ones and ticking its raft clock
// (actors.Broker.Pause). Unlike SIGSTOP, goroutines already running in
// it go on.
func (c *LocalCluster) Pause(id int32) {
	c.t.Helper()
	nd := c.running(id, "Pause")
	nd.paused = true
	c.hub.setPaused(id, true)
	nd.b.Pause()
}

// Resume thaws a paused node.
func (c *LocalCluster) Resume(id int32) {
	c.t.Helper()
	nd := c.running(id, "Resume")
	nd.b.Resume()
	c.hub.setPaused(id, false)
	nd.paused = false
}
