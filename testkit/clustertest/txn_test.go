package clustertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// TestLocalClusterTxnIsolatedCoordinator cuts the node coordinating a
// transactional id off from the others with a transaction open: the
// majority elects a new coordinator, which the producer reaches; the
// transaction in flight is committed whole or not at all, a new one
// commits, and after the heal every node's replica holds the same
// records, read_committed showing only whole transactions. The
// package's goroutine check also covers the inter-broker clients the
// coordinators used.
func TestLocalClusterTxnIsolatedCoordinator(t *testing.T) {
	c := testkit.NewCluster(t, 3)
	const topic, txnID = "txn-iso", "txn-iso-id"
	testkit.CreateClusterTopic(t, c, topic, 1, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	newProducer := func() *kgo.Client {
		return producer(c, kgo.TransactionalID(txnID), kgo.TransactionTimeout(20*time.Second))
	}
	txn := func(p *kgo.Client, tag string) error {
		if err := p.BeginTransaction(); err != nil {
			return err
		}
		for i := 0; i < 3; i++ {
			r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
			if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
				return err
			}
		}
		return p.EndTransaction(ctx, kgo.TryCommit)
	}
	p := newProducer()
	c.Eventually(30*time.Second, func() error { return txn(p, "first") })

	coord := coordinatorOf(t, c, txnID)
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("cut-%d", i))}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce cut-%d: %v", i, err)
		}
	}
	c.Isolate(coord)
	ectx, ecancel := context.WithTimeout(ctx, 30*time.Second)
	err := p.EndTransaction(ectx, kgo.TryCommit)
	ecancel()
	t.Logf("commit with coordinator %d cut off: %v", coord, err)
	if err != nil {
		p.Close()
		p = newProducer()
	}
	c.Eventually(60*time.Second, func() error { return txn(p, "after") })
	if now := coordinatorOf(t, c, txnID); now == coord {
		t.Fatalf("node %d, cut off, still coordinates %s", coord, txnID)
	}

	c.Heal()
	c.Eventually(30*time.Second, func() error { return c.ReplicasAgree(topic, 0) })
	got := readCommitted(t, c, topic, "after-2")
	want := append(values("first", 3), values("after", 3)...)
	if cut := values("cut", 3); len(got) == 9 {
		want = append(append(values("first", 3), cut...), values("after", 3)...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read_committed %v, want %v", got, want)
	}
}

// coordinatorOf asks FindCoordinator (transaction key) until it names a
// node.
func coordinatorOf(t *testing.T, c testkit.Cluster, txnID string) int32 {
	t.Helper()
	cl := c.Client()
	defer cl.Close()
	var node int32
	c.Eventually(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey, req.CoordinatorType = txnID, 1
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return err
		}
		node = resp.NodeID
		return nil
	})
	return node
}

// readCommitted reads partition 0 of topic read_committed, once its last
// stable offset equals its high watermark (no transaction open), up to
// the record lastValue, the last written, and returns the values.
func readCommitted(t *testing.T, c testkit.Cluster, topic, lastValue string) []string {
	t.Helper()
	cl := c.Client()
	defer cl.Close()
	var end int64
	c.Eventually(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		offs := map[int8]int64{}
		for _, iso := range []int8{0, 1} {
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID, req.IsolationLevel = -1, iso
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp, rp.CurrentLeaderEpoch = -1, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				return fmt.Errorf("ListOffsets answered %+v", resp)
			}
			sp := resp.Topics[0].Partitions[0]
			if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
				return err
			}
			offs[iso] = sp.Offset
		}
		if offs[0] != offs[1] {
			return fmt.Errorf("last stable offset %d below the high watermark %d", offs[1], offs[0])
		}
		end = offs[0]
		return nil
	})
	rc := c.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	// The last transaction's last record is the last data record: once
	// it is read, so is everything below the end.
	for !slices.Contains(got, lastValue) {
		fs := rc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed up to offset %d: %v, no %s", end, got, lastValue)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < end {
				got = append(got, string(r.Value))
			}
		})
	}
	return got
}
