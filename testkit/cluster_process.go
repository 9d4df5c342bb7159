package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// ProcessCluster is a Cluster of n chronik-actor child processes
// (StartCluster), one cluster.toml for all, with [testing] faults = true:
// Kill is SIGKILL, Stop SIGTERM, Pause SIGSTOP, Resume SIGCONT. The
// network faults (Partition, Isolate, Drop, Delay, Heal) are set on each
// node through its admin endpoint's /v1/faults, which acts on what that
// node sends; a node restarted or resumed is given the current settings
// again. Hook is not available: per-message callbacks cannot cross into
// another process.
type ProcessCluster struct {
	*clusterCore
	procs  []*Process
	paused []bool

	side  map[int32]int // node -> group of the current partition; nil when whole
	drop  float64
	delay time.Duration
}

var _ Cluster = (*ProcessCluster)(nil)

// NewProcessCluster starts n chronik-actor processes as one cluster and
// returns once it has formed (every node names a controller and sees
// every node up). Defaults as NewCluster's, but the raft
// clock is the production one (100 ms): it is not in cluster.toml.
// WithNodeConfig may tune only what cluster.toml holds; WithLogger does
// not apply (each node logs to its file, whose tail a failing test
// shows).
func NewProcessCluster(t testing.TB, n int, opts ...ClusterOption) *ProcessCluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("testkit: a cluster of %d nodes", n)
	}
	o := newClusterOptions(n, opts)
	f := processClusterFile(t, n, o)
	c := &ProcessCluster{paused: make([]bool, n)}
	c.procs = startCluster(t, n, f)
	addrs, admins := make([]string, n), make([]string, n)
	for i, p := range c.procs {
		addrs[i], admins[i] = p.Addr(), p.AdminAddr()
	}
	c.clusterCore = newClusterCore(t, o, addrs, admins, c.reachable)
	t.Cleanup(c.close)
	c.waitFormed()
	return c
}

// processClusterFile turns the options into cluster.toml: the defaults,
// then WithNodeConfig's tuning of what the file can say.
func processClusterFile(t testing.TB, n int, o clusterOptions) clusterFile {
	t.Helper()
	nodes := make([]cluster.Node, n)
	for i := range nodes {
		nodes[i].ID = int32(i + 1)
	}
	f := clusterFile{racks: map[int32]string{}, testing: "faults = true\n"}
	for id := int32(1); id <= int32(n); id++ {
		base := cluster.Default()
		base.NodeID, base.Nodes = id, append([]cluster.Node(nil), nodes...)
		base.DefaultReplicationFactor, base.DefaultPartitions, base.OffsetsPartitions = o.rf, o.parts, 1
		cfg := base
		cfg.Nodes = append([]cluster.Node(nil), nodes...)
		for _, tune := range o.tune {
			tune(&cfg)
		}
		if cfg.Rack != "" {
			f.racks[id] = cfg.Rack
		}
		for _, nd := range cfg.Nodes {
			if nd.Rack != "" && f.racks[nd.ID] == "" {
				f.racks[nd.ID] = nd.Rack
			}
		}
		if id == 1 {
			f.cluster = fmt.Sprintf("replication_factor = %d\npartitions = %d\nauto_create_topics = %v\nsegment_bytes = %d\nflush_interval = %q\noffsets_partitions = %d\noffsets_retention_minutes = %d\n",
				cfg.DefaultReplicationFactor, cfg.DefaultPartitions, cfg.AutoCreateTopics, cfg.SegmentBytes,
				cfg.FlushInterval.String(), cfg.OffsetsPartitions, int64(cfg.OffsetsRetention/time.Minute))
		}
		if !sameOutsideFile(base, cfg) {
			t.Fatalf("testkit: WithNodeConfig on a process cluster may tune only what cluster.toml holds ([cluster] keys, racks); node %d's tuning changed more", id)
		}
	}
	return f
}

// sameOutsideFile reports whether a and b differ only in what
// processClusterFile writes to cluster.toml.
func sameOutsideFile(a, b cluster.Config) bool {
	strip := func(c *cluster.Config) {
		c.DefaultReplicationFactor, c.DefaultPartitions, c.AutoCreateTopics = 0, 0, false
		c.SegmentBytes, c.FlushInterval, c.OffsetsPartitions, c.OffsetsRetention = 0, 0, 0, 0
		c.Rack = ""
		nodes := append([]cluster.Node(nil), c.Nodes...)
		for i := range nodes {
			nodes[i].Rack = ""
		}
		c.Nodes = nodes
	}
	strip(&a)
	strip(&b)
	return reflect.DeepEqual(a, b)
}

func (c *ProcessCluster) reachable(id int32) bool {
	return c.procs[id-1].running() && !c.paused[id-1]
}

// Process is node id's child process.
func (c *ProcessCluster) Process(id int32) *Process {
	c.t.Helper()
	c.check(id)
	return c.procs[id-1]
}

// AdminAddr is node id's admin HTTP address.
func (c *ProcessCluster) AdminAddr(id int32) string { return c.Process(id).AdminAddr() }

// Partition splits the raft network into groups; see Cluster.
func (c *ProcessCluster) Partition(groups ...[]int32) {
	c.t.Helper()
	side := map[int32]int{}
	for i, g := range groups {
		for _, id := range g {
			c.check(id)
			side[id] = i
		}
	}
	c.side = side
	c.applyAll()
}

// Isolate cuts node id off from every other node.
func (c *ProcessCluster) Isolate(id int32) {
	c.t.Helper()
	c.check(id)
	var rest []int32
	for _, o := range c.Nodes() {
		if o != id {
			rest = append(rest, o)
		}
	}
	c.Partition([]int32{id}, rest)
}

// Heal undoes Partition, Isolate, Drop and Delay on every node.
func (c *ProcessCluster) Heal() {
	c.t.Helper()
	c.side, c.drop, c.delay = nil, 0, 0
	c.applyAll()
}

// Drop makes every node lose each raft message it sends with
// probability rate; node i draws from a source seeded with Seed()+i.
func (c *ProcessCluster) Drop(rate float64) {
	c.t.Helper()
	if !(rate >= 0 && rate <= 1) {
		c.t.Fatalf("testkit: Drop(%v): not a probability", rate)
	}
	c.drop = rate
	c.applyAll()
}

// Delay makes every node hold everything it sends but keepalives for d.
func (c *ProcessCluster) Delay(d time.Duration) {
	c.t.Helper()
	c.delay = d
	c.applyAll()
}

// Hook fails the test unless h is nil: a per-message callback cannot
// cross into a child process.
func (c *ProcessCluster) Hook(h func(m NetMsg) Verdict) {
	c.t.Helper()
	if h != nil {
		c.t.Fatal("testkit: Hook needs an in-process cluster (NewCluster): per-message callbacks cannot cross into child processes")
	}
}

// settings are node id's share of the current faults.
func (c *ProcessCluster) settings(id int32) cluster.FaultSettings {
	s := cluster.FaultSettings{Cut: []int32{}, Drop: c.drop, Delay: c.delay.String(), Seed: c.seed + int64(id)}
	if c.side != nil {
		mine, in := c.side[id]
		for _, o := range c.Nodes() {
			if theirs, ok := c.side[o]; o != id && (!in || !ok || theirs != mine) {
				s.Cut = append(s.Cut, o)
			}
		}
	}
	return s
}

// applyAll sets every reachable node's faults; the others get theirs
// when they come back (Restart, Resume).
func (c *ProcessCluster) applyAll() {
	c.t.Helper()
	for _, id := range c.Nodes() {
		if c.reachable(id) {
			c.apply(id)
		}
	}
}

// apply PUTs node id's settings to its /v1/faults.
func (c *ProcessCluster) apply(id int32) {
	c.t.Helper()
	body, err := json.Marshal(c.settings(id))
	if err != nil {
		c.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPut, "http://"+c.AdminAddr(id)+"/v1/faults", bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("testkit: set node %d's faults: %v", id, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("testkit: set node %d's faults: %s: %s", id, resp.Status, strings.TrimSpace(string(answer)))
	}
}

// Kill sends node id SIGKILL and waits until it is gone.
func (c *ProcessCluster) Kill(id int32) {
	c.t.Helper()
	p := c.runningProcess(id, "Kill")
	p.Kill()
	c.paused[id-1] = false
}

// Stop sends node id SIGTERM and waits (up to 30 s) for it to exit with
// status 0.
func (c *ProcessCluster) Stop(id int32) {
	c.t.Helper()
	p := c.runningProcess(id, "Stop")
	if c.paused[id-1] {
		c.Resume(id) // a stopped process would never act on SIGTERM
	}
	p.Stop(30 * time.Second)
}

// Restart starts a stopped or killed node again on its data dir and
// addresses, waits until it answers ApiVersions, and gives it the
// current faults.
func (c *ProcessCluster) Restart(id int32) {
	c.t.Helper()
	p := c.Process(id)
	p.Restart()
	c.waitAdmin(id)
	c.apply(id)
}

// waitAdmin waits until node id's admin endpoint answers: it listens
// before Kafka does, but a test should not depend on that.
func (c *ProcessCluster) waitAdmin(id int32) {
	c.t.Helper()
	c.Eventually(c.deadline, func() error {
		resp, err := c.http.Get("http://" + c.AdminAddr(id) + "/v1/faults")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("node %d /v1/faults: %s", id, resp.Status)
		}
		return nil
	})
}

// Pause sends node id SIGSTOP: it neither sends nor answers anything
// until Resume.
func (c *ProcessCluster) Pause(id int32) {
	c.t.Helper()
	p := c.runningProcess(id, "Pause")
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatalf("testkit: SIGSTOP node %d: %v", id, err)
	}
	c.paused[id-1] = true
}

// Resume sends a paused node SIGCONT and gives it the current faults
// (they may have changed while it was stopped).
func (c *ProcessCluster) Resume(id int32) {
	c.t.Helper()
	p := c.runningProcess(id, "Resume")
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		c.t.Fatalf("testkit: SIGCONT node %d: %v", id, err)
	}
	c.paused[id-1] = false
	c.apply(id)
}

func (c *ProcessCluster) runningProcess(id int32, op string) *Process {
	c.t.Helper()
	p := c.Process(id)
	if !p.running() {
		c.t.Fatalf("testkit: %s(%d): the node is not running", op, id)
	}
	return p
}
