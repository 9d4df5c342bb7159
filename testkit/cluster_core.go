package testkit

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// clusterCore is what LocalCluster and ProcessCluster share: the nodes'
// Kafka addresses, the clients, and the questions asked over Kafka
// (who leads, what the replicas are), which are the same either way.
type clusterCore struct {
	t        testing.TB
	addrs    []string // node i+1's Kafka address
	seed     int64
	deadline time.Duration
	// reachable reports whether node id can answer a Kafka request now
	// (running and not paused): the others are not asked, so that a
	// question never waits on a node that cannot answer.
	reachable func(id int32) bool
	probe     *kgo.Client // seeded with every node, in order: asks one node at a time
}

func newClusterCore(t testing.TB, o clusterOptions, addrs []string, reachable func(int32) bool) *clusterCore {
	t.Helper()
	seed := o.seed
	if !o.seeded {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = int64(binary.BigEndian.Uint64(b[:]) >> 1)
	}
	t.Logf("testkit: cluster seed %d (ClusterSeed(%d) replays it)", seed, seed)
	c := &clusterCore{t: t, addrs: addrs, seed: seed, deadline: o.deadline, reachable: reachable}
	probe, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DialTimeout(time.Second),
		kgo.RequestRetries(0), kgo.RequestTimeoutOverhead(time.Second))
	if err != nil {
		t.Fatalf("testkit: probe client: %v", err)
	}
	c.probe = probe
	return c
}

func (c *clusterCore) close() { c.probe.Close() }

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

// metadataOf asks node id alone for topic's metadata.
func (c *clusterCore) metadataOf(id int32, topics ...string) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	seeds := c.probe.SeedBrokers()
	resp, err := seeds[id-1].Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", id, err)
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// partitionSeen is one node's Metadata answer for one partition.
type partitionSeen struct {
	from, leader, epoch int32
	replicas            []int32
}

// leaderSeen asks every reachable node who leads topic's partition p and
// takes the answer with the highest leader epoch, preferring, at equal
// epochs, the leader's own: a node names itself only when its replica
// leads and has applied an entry of its term (it accepts writes), while
// a node on the far side of a partition may still name an old leader.
func (c *clusterCore) leaderSeen(topic string, p int32) (best partitionSeen, found bool, err error) {
	var errs []error
	for _, id := range c.Nodes() {
		if !c.reachable(id) {
			continue
		}
		resp, merr := c.metadataOf(id, topic)
		if merr != nil {
			errs = append(errs, merr)
			continue
		}
		for _, rt := range resp.Topics {
			if rt.Topic == nil || *rt.Topic != topic {
				continue
			}
			for _, rp := range rt.Partitions {
				if rp.Partition != p {
					continue
				}
				seen := partitionSeen{from: id, leader: rp.Leader, epoch: rp.LeaderEpoch, replicas: rp.Replicas}
				if rp.Leader < 0 {
					if !found && best.replicas == nil {
						best.replicas = rp.Replicas
					}
					continue
				}
				self := seen.leader == seen.from
				if !found || seen.epoch > best.epoch || (seen.epoch == best.epoch && self && best.leader != best.from) {
					best, found = seen, true
				}
			}
		}
	}
	if !found {
		err = errors.Join(errs...)
		if err == nil {
			err = fmt.Errorf("no reachable node names a leader of %s-%d", topic, p)
		}
	}
	return best, found, err
}

// Leader is the node leading topic's partition p as the cluster's
// Metadata reports it (the answer with the highest leader epoch among
// the reachable nodes'), and whether one is known.
func (c *clusterCore) Leader(topic string, p int32) (int32, bool) {
	best, ok, _ := c.leaderSeen(topic, p)
	return best.leader, ok
}

// Followers are the other replicas of topic's partition p, as Metadata
// reports them; all replicas when no leader is known.
func (c *clusterCore) Followers(topic string, p int32) []int32 {
	best, _, _ := c.leaderSeen(topic, p)
	var out []int32
	for _, id := range best.replicas {
		if id != best.leader {
			out = append(out, id)
		}
	}
	return out
}

// WaitForLeader waits until partition p of topic has a leader that
// accepts writes (it names itself the leader at the highest epoch any
// node reports), and returns it.
func (c *clusterCore) WaitForLeader(topic string, p int32) int32 {
	c.t.Helper()
	var leader int32
	c.Eventually(c.deadline, func() error {
		best, ok, err := c.leaderSeen(topic, p)
		switch {
		case !ok:
			return err
		case best.leader != best.from:
			return fmt.Errorf("%s-%d: node %d names node %d the leader at epoch %d, which does not (yet) confirm it", topic, p, best.from, best.leader, best.epoch)
		}
		leader = best.leader
		return nil
	})
	return leader
}

// waitFormed waits until every node's Metadata names a controller and
// lists every node as live: the cluster's controller has a quorum and
// each node hears the others.
func (c *clusterCore) waitFormed() {
	c.t.Helper()
	c.Eventually(c.deadline, func() error {
		for _, id := range c.Nodes() {
			resp, err := c.metadataOf(id)
			if err != nil {
				return err
			}
			if resp.ControllerID < 0 || len(resp.Brokers) != len(c.addrs) {
				return fmt.Errorf("node %d: controller %d, %d of %d brokers live", id, resp.ControllerID, len(resp.Brokers), len(c.addrs))
			}
		}
		return nil
	})
}

// CreateClusterTopic creates topic on c with the given partitions and
// replication factor (-1 for the cluster's defaults), retrying while the
// cluster answers with retriable errors (a controller election), and
// waits until every partition has a leader that accepts writes
// (WaitForLeader).
func CreateClusterTopic(t testing.TB, c Cluster, topic string, partitions int32, rf int16) {
	t.Helper()
	cl, err := kgo.NewClient(ClientOpts(strings.Split(c.Seeds(), ",")...)...)
	if err != nil {
		t.Fatalf("testkit: client: %v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// A non-retriable error ends the wait at once: retrying cannot help.
	// Except INVALID_REPLICATION_FACTOR for a while: the replication
	// factor is checked against the nodes the answering node sees up,
	// and right after a (re)start it may not have heard from all of them
	// yet, as with Kafka brokers that have not registered yet.
	var refused error
	first := time.Now()
	c.Eventually(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := adm.CreateTopic(ctx, partitions, rf, nil, topic)
		if err == nil {
			err = res.Err
		}
		switch {
		case err == nil || errors.Is(err, kerr.TopicAlreadyExists):
			// Exists: an earlier try went through after its answer was lost.
			return nil
		case errors.Is(err, kerr.InvalidReplicationFactor) && time.Since(first) < 10*time.Second:
			return err
		case !kerr.IsRetriable(err) && !errors.Is(err, kerr.NotController) && !errors.Is(err, context.DeadlineExceeded):
			refused = err
			return nil
		}
		return err
	})
	if refused != nil {
		t.Fatalf("testkit: create topic %s: %v", topic, refused)
	}
	var n int
	c.Eventually(30*time.Second, func() error {
		md, err := adm.ListTopics(context.Background(), topic)
		if err != nil {
			return err
		}
		if err := md[topic].Err; err != nil {
			return err
		}
		n = len(md[topic].Partitions)
		return nil
	})
	for p := range int32(n) {
		c.WaitForLeader(topic, p)
	}
}

// ReplicaLog is one replica's copy of a partition, as its node serves it
// to a consumer (Fetch v11+, which any replica serves up to its own high
// watermark): what a test compares to tell that replicas converged.
type ReplicaLog struct {
	HighWatermark  int64
	LogStartOffset int64
	// Batches are the partition's record batches from the log start to
	// the high watermark, byte for byte as stored (replicas apply the
	// same entries into the same bytes).
	Batches []byte
}

// ReadReplica reads node id's replica of topic's partition p from its
// log start to its high watermark, asking that node alone.
func (c *clusterCore) ReadReplica(id int32, topic string, p int32) (ReplicaLog, error) {
	c.check(id)
	md, err := c.metadataOf(id, topic)
	if err != nil {
		return ReplicaLog{}, err
	}
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
		return ReplicaLog{}, fmt.Errorf("node %d: no metadata for %s", id, topic)
	}
	topicID := md.Topics[0].TopicID
	var out ReplicaLog
	offset := int64(0)
	first := true
	for {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MaxBytes = 64 << 20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		// Both: the version kgo negotiates decides which goes out.
		rt.Topic, rt.TopicID = topic, topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 32<<20
		rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := c.probe.SeedBrokers()[id-1].Request(ctx, req)
		cancel()
		if err != nil {
			return ReplicaLog{}, fmt.Errorf("node %d: fetch: %w", id, err)
		}
		fr := resp.(*kmsg.FetchResponse)
		if fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
			return ReplicaLog{}, fmt.Errorf("node %d: fetch: error %d, %d topics", id, fr.ErrorCode, len(fr.Topics))
		}
		part := fr.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
			return ReplicaLog{}, fmt.Errorf("node %d: fetch %s-%d at %d: %w", id, topic, p, offset, err)
		}
		if first {
			out.HighWatermark, out.LogStartOffset = part.HighWatermark, part.LogStartOffset
			offset, first = part.LogStartOffset, false
			if offset > 0 {
				continue // the first fetch asked at 0, below the log start
			}
		}
		whole, next := wholeBatches(part.RecordBatches)
		out.Batches = append(out.Batches, whole...)
		if len(whole) == 0 || next >= out.HighWatermark {
			return out, nil
		}
		offset = next
	}
}

// wholeBatches is the prefix of b that holds whole record batches, and
// the offset after its last.
func wholeBatches(b []byte) ([]byte, int64) {
	n, next := 0, int64(0)
	for len(b)-n >= 61 { // a batch header
		size := 12 + int(binary.BigEndian.Uint32(b[n+8:]))
		if len(b)-n < size {
			break
		}
		base := int64(binary.BigEndian.Uint64(b[n:]))
		next = base + int64(binary.BigEndian.Uint32(b[n+23:])) + 1
		n += size
	}
	return b[:n], next
}

// ReplicasAgree checks that every reachable replica of topic's
// partition p is at the same high watermark with the same bytes: nil once
// the replicas have converged (wait for it with Eventually).
func (c *clusterCore) ReplicasAgree(topic string, p int32) error {
	best, _, err := c.leaderSeen(topic, p)
	if best.replicas == nil {
		return fmt.Errorf("%s-%d: no replica set known: %v", topic, p, err)
	}
	var ref ReplicaLog
	var refID int32
	for _, id := range best.replicas {
		if !c.reachable(id) {
			continue
		}
		got, err := c.ReadReplica(id, topic, p)
		if err != nil {
			return err
		}
		if refID == 0 {
			ref, refID = got, id
			continue
		}
		if got.HighWatermark != ref.HighWatermark || string(got.Batches) != string(ref.Batches) {
			return fmt.Errorf("%s-%d: node %d at high watermark %d (%d bytes) differs from node %d at %d (%d bytes)",
				topic, p, id, got.HighWatermark, len(got.Batches), refID, ref.HighWatermark, len(ref.Batches))
		}
	}
	if refID == 0 {
		return fmt.Errorf("%s-%d: no replica reachable", topic, p)
	}
	return nil
}

// ProduceTo sends one Produce request with acks=all to node id alone,
// with no retries and no producer id, holding values as one batch for
// topic's partition p, and returns the batch's offset or the error that
// node answered (or the request's own, after within). It tells what one
// node does with a write, where a client would look for the leader
// elsewhere: a node cut off from its peers must acknowledge nothing.
func (c *clusterCore) ProduceTo(id int32, topic string, p int32, within time.Duration, values ...[]byte) (int64, error) {
	c.check(id)
	md, err := c.metadataOf(id, topic)
	if err != nil {
		return -1, err
	}
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
		return -1, fmt.Errorf("node %d: no metadata for %s", id, topic)
	}
	recs := make([]protocol.Record, len(values))
	for i, v := range values {
		recs[i] = protocol.Record{Value: v}
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = int32(within.Milliseconds())
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, md.Topics[0].TopicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, protocol.BuildBatch(recs, time.Now().UnixMilli())
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), within+2*time.Second)
	defer cancel()
	resp, err := c.probe.SeedBrokers()[id-1].Request(ctx, req)
	if err != nil {
		return -1, fmt.Errorf("node %d: produce: %w", id, err)
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		return -1, fmt.Errorf("node %d: produce: %d topics in the answer", id, len(pr.Topics))
	}
	part := pr.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
		return -1, err
	}
	return part.BaseOffset, nil
}
