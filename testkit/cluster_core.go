package testkit

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/cluster"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// clusterCore is what LocalCluster and ProcessCluster share: the nodes'
// Kafka addresses, the clients, and the questions asked over Kafka
// (who leads, what the replicas are), which are the same either way.
type clusterCore struct {
	t        testing.TB
	addrs    []string // node i+1's Kafka address
	admins   []string // node i+1's admin HTTP address
	seed     int64
	deadline time.Duration
	// reachable reports whether node id can answer a Kafka request now
	// (running and not paused): the others are not asked, so that a
	// question never waits on a node that cannot answer.
	reachable func(id int32) bool
	probe     *kgo.Client // seeded with every node, in order: asks one node at a time
	http      *http.Client
}

func newClusterCore(t testing.TB, o clusterOptions, addrs, admins []string, reachable func(int32) bool) *clusterCore {
	t.Helper()
	seed := o.seed
	if !o.seeded {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = int64(binary.BigEndian.Uint64(b[:]) >> 1)
	}
	t.Logf("testkit: cluster seed %d (ClusterSeed(%d) replays it)", seed, seed)
	c := &clusterCore{t: t, addrs: addrs, admins: admins, seed: seed, deadline: o.deadline, reachable: reachable,
		http: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{}}}
	probe, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DialTimeout(time.Second),
		kgo.RequestRetries(0), kgo.RequestTimeoutOverhead(time.Second))
	if err != nil {
		t.Fatalf("testkit: probe client: %v", err)
	}
	c.probe = probe
	return c
}

func (c *clusterCore) close() {
	c.probe.Close()
	c.http.CloseIdleConnections()
}

// Nodes lists the node ids, 1..n.
func (c *clusterCore) Nodes() []int32 {
	ids := make([]int32, len(c.addrs))
	for i := range ids {
		ids[i] = int32(i + 1)
	}
	return ids
}

// Addr is node id's Kafka address, the same across restarts.
func (c *clusterCore) Addr(id int32) string {
	c.t.Helper()
	c.check(id)
	return c.addrs[id-1]
}

// Seeds is every node's Kafka address, comma-separated.
func (c *clusterCore) Seeds() string { return strings.Join(c.addrs, ",") }

// Seed is the seed of the cluster's random choices.
func (c *clusterCore) Seed() int64 { return c.seed }

func (c *clusterCore) check(id int32) {
	c.t.Helper()
	if id < 1 || int(id) > len(c.addrs) {
		c.t.Fatalf("testkit: no node %d in a cluster of %d", id, len(c.addrs))
	}
}

// ClientOpts are the options Client starts from: every node as a seed,
// and settings that let a client see a failover quickly (metadata
// refreshed as soon as 10 ms after the last, short request timeouts so
// that a paused or cut-off node is given up on within seconds, fast
// retries).
func ClientOpts(seeds ...string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.MetadataMinAge(10 * time.Millisecond),
		kgo.MetadataMaxAge(2 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 25 * time.Millisecond }),
		kgo.DialTimeout(time.Second),
		kgo.ProduceRequestTimeout(3 * time.Second),
		kgo.RequestTimeoutOverhead(2 * time.Second),
		kgo.RetryTimeout(20 * time.Second),
	}
}

// Client is a franz-go client seeded with every node (ClientOpts, then
// opts), closed at the test's cleanup.
func (c *clusterCore) Client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append(ClientOpts(c.addrs...), opts...)...)
	if err != nil {
		c.t.Fatalf("testkit: client: %v", err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// Eventually retries f until it returns nil or d has passed, then fails
// the test with f's last error.
func (c *clusterCore) Eventually(d time.Duration, f func() error) {
	c.t.Helper()
	if err := wait.Until(context.Background(), d, f); err != nil {
		c.t.Fatalf("not within %v: %v", d, err)
	}
}

// View is node id's view of the cluster, its admin endpoint's
// /v1/cluster: which nodes it sees up, the controller, every partition's
// replicas, leader and its local high watermark.
func (c *clusterCore) View(id int32) (cluster.View, error) {
	c.check(id)
	var v cluster.View
	resp, err := c.http.Get("http://" + c.admins[id-1] + "/v1/cluster")
	if err != nil {
		return v, fmt.Errorf("node %d: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("node %d /v1/cluster: %s", id, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return v, fmt.Errorf("node %d /v1/cluster: %w", id, err)
	}
	return v, nil
}

// waitFormed waits until every node names a controller and sees every
// node up (its /v1/cluster): the controller has a quorum and each node
// hears the others.
func (c *clusterCore) waitFormed() {
	c.t.Helper()
	c.Eventually(c.deadline, func() error {
		for _, id := range c.Nodes() {
			v, err := c.View(id)
			if err != nil {
				return err
			}
			up := 0
			for _, n := range v.Nodes {
				if n.Up {
					up++
				}
			}
			if v.ControllerID < 0 || up != len(c.addrs) {
				return fmt.Errorf("node %d: controller %d, %d of %d nodes up", id, v.ControllerID, up, len(c.addrs))
			}
		}
		return nil
	})
}
