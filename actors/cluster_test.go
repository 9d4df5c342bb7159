package actors

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/cluster"
	"github.com/chronik-actor/chronik-actor/raftactor"
	"github.com/chronik-actor/chronik-actor/testkit/loopback"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

func freePort(t *testing.T) string { return loopback.Addr(t) }

// threeNodes starts a 3-node cluster in this process on loopback ports
// chosen now; brokers[i] is node i+1.
func threeNodes(t *testing.T) ([]*Broker, []cluster.Config) {
	return threeNodesWith(t, func(*cluster.Config) {})
}

func threeNodesWith(t *testing.T, tune func(*cluster.Config)) ([]*Broker, []cluster.Config) {
	t.Helper()
	cfgs := clusterConfigs(t, tune)
	brokers := make([]*Broker, 3)
	errs := make(chan error, 3)
	for i := range cfgs {
		go func(i int) {
			b, err := StartBroker(cfgs[i], slog.New(slog.NewTextHandler(io.Discard, nil)))
			brokers[i] = b
			errs <- err
		}(i)
	}
	for range cfgs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, b := range brokers {
			if b != nil {
				b.Close()
			}
		}
	})
	return brokers, cfgs
}

// clusterConfigs are the configurations of a 3-node cluster on loopback
// ports chosen now, tuned by tune.
func clusterConfigs(t *testing.T, tune func(*cluster.Config)) []cluster.Config {
	t.Helper()
	dir := t.TempDir()
	var nodes []cluster.Node
	for id := int32(1); id <= 3; id++ {
		nodes = append(nodes, cluster.Node{ID: id, Kafka: freePort(t), Raft: freePort(t), DataDir: filepath.Join(dir, fmt.Sprint(id))})
	}
	var cfgs []cluster.Config
	for _, n := range nodes {
		cfg := cluster.Default()
		cfg.NodeID, cfg.Nodes = n.ID, nodes
		cfg.DefaultReplicationFactor, cfg.DefaultPartitions, cfg.OffsetsPartitions = 3, 3, 3
		cfg.ApplyNode()
		cfg.RaftAddr = n.Raft
		tune(&cfg)
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

// A node started for the first time after the other two formed the
// cluster (and registered) is a new member, not a wiped one: it joins.
func TestClusterNodeStartedLateJoins(t *testing.T) {
	cfgs := clusterConfigs(t, func(c *cluster.Config) { c.DefaultReplicationFactor = 2 })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var brokers []*Broker
	t.Cleanup(func() {
		for _, b := range brokers {
			b.Close()
		}
	})
	errs := make(chan error, 2)
	started := make([]*Broker, 2)
	for i := 0; i < 2; i++ {
		go func(i int) {
			b, err := StartBroker(cfgs[i], quiet)
			started[i] = b
			errs <- err
		}(i)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	brokers = append(brokers, started...)
	wait.For(t, 30*time.Second, func() error {
		md := brokers[0].controller.Metadata()
		if md.Brokers[1] == nil || md.Brokers[2] == nil {
			return fmt.Errorf("registered: %v", md.Brokers)
		}
		return nil
	})
	b, err := StartBroker(cfgs[2], quiet)
	if err != nil {
		t.Fatalf("a new node refused: %v", err)
	}
	brokers = append(brokers, b)
	wait.For(t, 30*time.Second, func() error {
		if brokers[0].controller.Metadata().Brokers[3] == nil {
			return fmt.Errorf("node 3 not registered")
		}
		return nil
	})
}

// Three nodes: a topic with RF 3 is created through any node, produced to
// with acks=all and read back in full; every replica holds the same bytes;
// with its leader's node stopped, a partition gets a new leader on the
// others and takes writes again, and nothing acknowledged is lost.
func TestClusterReplicatesAndFailsOver(t *testing.T) {
	brokers, cfgs := threeNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	seeds := []string{cfgs[0].KafkaAddr, cfgs[1].KafkaAddr, cfgs[2].KafkaAddr}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100),
		kgo.RetryTimeout(30*time.Second), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	createTopic(t, ctx, adm, "orders", 3, 3)
	produce := func(tag string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			r := &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s-%d: %v", tag, i, err)
			}
		}
	}
	produce("a", 300)
	// Every replica of every partition holds the same bytes.
	wait.For(t, 20*time.Second, func() error { return sameReplicas(brokers, "orders", 3) })

	// Stop the node leading partition 0; the others elect and go on.
	var victim int
	for i, b := range brokers {
		if h := b.replicas.get("orders", 0); h != nil && h.replica.LeaderReady() {
			victim = i
		}
	}
	brokers[victim].Close()
	brokers[victim] = nil
	// With one node down, a topic of RF 3 cannot be placed on live nodes:
	// INVALID_REPLICATION_FACTOR, as Kafka answers.
	wait.For(t, 10*time.Second, func() error {
		resp, err := adm.CreateTopic(ctx, 1, 3, nil, "rf3-one-down")
		if !errors.Is(err, kerr.InvalidReplicationFactor) && !errors.Is(resp.Err, kerr.InvalidReplicationFactor) {
			return fmt.Errorf("RF 3 with a node down: %v / %v", err, resp.Err)
		}
		return nil
	})
	produce("b", 300)
	got := map[string]bool{}
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for len(got) < 600 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back %d of 600", len(got))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if got[string(r.Value)] {
				t.Errorf("%s read twice", r.Value)
			}
			got[string(r.Value)] = true
		})
	}

	// The stopped node's data dir wiped: it must not come back as a
	// voter with no memory of what it acknowledged.
	if err := os.RemoveAll(cfgs[victim].DataDir); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, func() error {
		for _, b := range brokers {
			if b != nil && b.controller.Metadata().Brokers[cfgs[victim].NodeID] == nil {
				return fmt.Errorf("the stopped node is not registered on node %d", b.cfg.NodeID)
			}
		}
		return nil
	})
	if b, err := StartBroker(cfgs[victim], slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		b.Close()
		t.Fatal("a node with a wiped data dir rejoined the cluster")
	} else if !strings.Contains(err.Error(), "must not rejoin") {
		t.Fatalf("wiped node refused with %v", err)
	}
}

// sameReplicas checks that every live replica of each partition of topic
// is at the same high watermark with the same log bytes.
func sameReplicas(brokers []*Broker, topic string, partitions int32) error {
	for p := int32(0); p < partitions; p++ {
		var ref []byte
		var refHW int64 = -1
		for i, b := range brokers {
			if b == nil {
				continue
			}
			h := b.replicas.get(topic, p)
			if h == nil {
				return fmt.Errorf("node %d hosts no replica of %s-%d", i+1, topic, p)
			}
			v := h.sm.View()
			data, err := v.Read(v.LogStartOffset(), 64<<20)
			if err != nil {
				return err
			}
			if refHW < 0 {
				ref, refHW = data, v.HighWatermark()
				continue
			}
			if v.HighWatermark() != refHW || string(data) != string(ref) {
				return fmt.Errorf("%s-%d: node %d at %d differs from the first replica at %d", topic, p, i+1, v.HighWatermark(), refHW)
			}
		}
	}
	return nil
}

// A node stopped while its partitions' leaders write more than the raft
// log they keep for it comes back and is caught up by snapshots: its
// replicas then hold the leaders' bytes exactly and go on replicating.
func TestClusterFollowerCatchesUpThroughSnapshot(t *testing.T) {
	brokers, cfgs := threeNodesWith(t, func(c *cluster.Config) {
		c.RetainLogBytes = 64 << 10
		c.FlushInterval = 50 * time.Millisecond
		c.SegmentBytes = 256 << 10
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	seeds := []string{cfgs[0].KafkaAddr, cfgs[1].KafkaAddr, cfgs[2].KafkaAddr}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100),
		kgo.RetryTimeout(30*time.Second), kgo.DefaultProduceTopic("catchup"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	createTopic(t, ctx, adm, "catchup", 2, 3)
	// In rounds of 20 records, so that each partition's raft log gets many
	// entries and its leader many checkpoints.
	produce := func(n int) {
		t.Helper()
		for i := 0; i < n; i += 20 {
			var rs []*kgo.Record
			for j := i; j < min(i+20, n); j++ {
				// Random, so that the producer's compression leaves
				// each record its 1000 bytes.
				value := make([]byte, 1000)
				_, _ = rand.Read(value)
				rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint(j)), Value: value})
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	produce(100)
	const away = 2
	brokers[away].Close()
	brokers[away] = nil
	produce(2000) // 2 MB: far past the 64 KiB kept for the stopped node
	// Each partition's leader trims its raft log past what the stopped
	// node matched, so the node can only come back through a snapshot.
	wait.For(t, 30*time.Second, func() error {
		for p := int32(0); p < 2; p++ {
			var st *raftactor.Status
			var r *raftactor.Replica
			for _, b := range brokers {
				if b == nil {
					continue
				}
				if h := b.replicas.get("catchup", p); h != nil && h.replica.GroupStatus() != nil {
					st, r = h.replica.GroupStatus(), h.replica
				}
			}
			if st == nil {
				return fmt.Errorf("partition %d: no leader status", p)
			}
			for _, v := range st.Voters {
				if v.ID == uint64(cfgs[away].NodeID) && r.TrimmedIndex() <= v.Match {
					return fmt.Errorf("partition %d: trimmed to %d, the stopped node matched %d", p, r.TrimmedIndex(), v.Match)
				}
			}
		}
		return nil
	})
	b, err := StartBroker(cfgs[away], slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	brokers[away] = b
	wait.For(t, 30*time.Second, func() error { return sameReplicas(brokers, "catchup", 2) })
	for p := int32(0); p < 2; p++ {
		if n := b.replicas.get("catchup", p).replica.SnapshotsInstalled(); n == 0 {
			t.Fatalf("partition %d caught up without a snapshot: the test did not outrun the retained log", p)
		}
	}
	produce(100)
	wait.For(t, 30*time.Second, func() error { return sameReplicas(brokers, "catchup", 2) })
}

// fetchedFrom records which broker served each fetched batch.
type fetchedFrom struct {
	mu    sync.Mutex
	nodes map[int32]int
}

func (f *fetchedFrom) OnFetchBatchRead(meta kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[meta.NodeID] += m.NumRecords
}

// KIP-392: a consumer with a rack reads from the in-sync replica in its
// rack, a follower, once the leader names it; every record comes back.
func TestClusterFollowerFetching(t *testing.T) {
	racks := map[int32]string{1: "r1", 2: "r2", 3: "r3"}
	brokers, cfgs := threeNodesWith(t, func(c *cluster.Config) {
		for i := range c.Nodes {
			c.Nodes[i].Rack = racks[c.Nodes[i].ID]
		}
		c.Rack = racks[c.NodeID]
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seeds := []string{cfgs[0].KafkaAddr, cfgs[1].KafkaAddr, cfgs[2].KafkaAddr}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("racked"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	createTopic(t, ctx, adm, "racked", 1, 3)
	for i := 0; i < 50; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var leader int32
	for _, b := range brokers {
		if h := b.replicas.get("racked", 0); h != nil && h.replica.LeaderReady() {
			leader = b.cfg.NodeID
		}
	}
	follower := leader%3 + 1
	// Wait until the leader counts that follower in sync.
	wait.For(t, 10*time.Second, func() error {
		h := brokers[leader-1].replicas.get("racked", 0)
		for _, id := range h.replica.InSync() {
			if int32(id) == follower {
				return nil
			}
		}
		return fmt.Errorf("node %d not in sync yet", follower)
	})
	seen := &fetchedFrom{nodes: map[int32]int{}}
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("racked"), kgo.Rack(racks[follower]),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithHooks(seen))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := 0
	for got < 50 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of 50", got)
		}
		got += fs.NumRecords()
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if seen.nodes[follower] != 50 {
		t.Fatalf("records read per node %v: want all 50 from node %d, the replica in the consumer's rack (leader %d)", seen.nodes, follower, leader)
	}
}

// netsplit cuts links between in-process nodes (cluster.Config.Network):
// everything one node sends another across a cut, keepalives included,
// is lost, so each sees the other down as behind a firewall.
type netsplit struct {
	mu  sync.Mutex
	cut map[[2]int32]bool
}

func (n *netsplit) isolate(id int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for o := int32(1); o <= 3; o++ {
		if o != id {
			n.cut[[2]int32{id, o}], n.cut[[2]int32{o, id}] = true, true
		}
	}
}

func (n *netsplit) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]int32]bool{}
}

func (n *netsplit) fate(o cluster.Outbound) cluster.Fate {
	n.mu.Lock()
	defer n.mu.Unlock()
	return cluster.Fate{Drop: n.cut[[2]int32{int32(o.From), int32(o.To)}]}
}

// The leader cut off from the other two nodes (their raft traffic
// dropped both ways, its clients still reaching it): nothing produced
// through it with acks=all is acknowledged; the majority elects a new
// leader and goes on; after the heal the old leader's uncommitted entries
// are gone and every replica holds the same bytes.
func TestClusterCutOffLeader(t *testing.T) {
	split := &netsplit{cut: map[[2]int32]bool{}}
	brokers, cfgs := threeNodesWith(t, func(c *cluster.Config) { c.Network = split.fate })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := []string{cfgs[0].KafkaAddr, cfgs[1].KafkaAddr, cfgs[2].KafkaAddr}
	cl, err := kgo.NewClient(kgo.SeedBrokers(all...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("split"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	createTopic(t, ctx, adm, "split", 1, 3)
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint("before-", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var old int32
	for _, b := range brokers {
		if h := b.replicas.get("split", 0); h != nil && h.replica.LeaderReady() {
			old = b.cfg.NodeID
		}
	}
	// Let the group go quiet first: the split must be noticed without
	// any raft traffic to notice it by.
	wait.For(t, 10*time.Second, func() error {
		for _, b := range brokers {
			if h := b.replicas.get("split", 0); !h.replica.Quiesced() {
				return fmt.Errorf("node %d's replica still ticking", b.cfg.NodeID)
			}
		}
		return nil
	})
	split.isolate(old)

	// A client on the old leader's side of the split, which can reach
	// no other node, gets no acknowledgement.
	oldAddr := cfgs[old-1].KafkaAddr
	var d net.Dialer
	minority, err := kgo.NewClient(kgo.SeedBrokers(oldAddr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic("split"), kgo.RecordDeliveryTimeout(3*time.Second),
		kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			if host != oldAddr {
				return nil, fmt.Errorf("%s is on the other side of the split", host)
			}
			return d.DialContext(ctx, network, host)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer minority.Close()
	for i := 0; i < 2; i++ {
		if r, err := minority.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint("lost-", i))}).First(); err == nil {
			var st []string
			for _, b := range brokers {
				h := b.replicas.get("split", 0)
				st = append(st, fmt.Sprintf("node %d: ready %v leader %d term %d hw %d", b.cfg.NodeID, h.replica.LeaderReady(), h.replica.Leader(), h.replica.Term(), h.sm.View().HighWatermark()))
			}
			t.Fatalf("lost-%d acknowledged on the cut-off side (old leader %d) at offset %d epoch %d: %v", i, old, r.Offset, r.LeaderEpoch, st)
		}
	}

	// The majority goes on under a new leader.
	var others []string
	for _, c := range cfgs {
		if c.NodeID != old {
			others = append(others, c.KafkaAddr)
		}
	}
	majority, err := kgo.NewClient(kgo.SeedBrokers(others...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("split"))
	if err != nil {
		t.Fatal(err)
	}
	defer majority.Close()
	for i := 0; i < 10; i++ {
		if err := majority.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint("after-", i))}).FirstErr(); err != nil {
			t.Fatalf("after-%d on the majority: %v", i, err)
		}
	}
	split.heal()
	wait.For(t, 30*time.Second, func() error { return sameReplicas(brokers, "split", 1) })
	cons, err := kgo.NewClient(kgo.SeedBrokers(all...), kgo.ConsumeTopics("split"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < 20 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of 20: %v", len(got), got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for _, v := range got {
		if strings.HasPrefix(v, "lost-") {
			t.Fatalf("an unacknowledged record survived: %v", got)
		}
	}
	if h := brokers[old-1].replicas.get("split", 0); h.sm.View().HighWatermark() != 20 {
		t.Fatalf("old leader at %d after the heal, want 20", h.sm.View().HighWatermark())
	}
}

// createTopic creates a topic on a cluster that may still be forming
// (CreateTopics answers retriable errors until the controller has a
// leader), retrying until it succeeds.
func createTopic(t *testing.T, ctx context.Context, adm *kadm.Client, name string, partitions int32, rf int16) {
	t.Helper()
	wait.For(t, 30*time.Second, func() error {
		res, err := adm.CreateTopic(ctx, partitions, rf, nil, name)
		if err == nil && res.Err != nil {
			err = res.Err
		}
		return err
	})
}
