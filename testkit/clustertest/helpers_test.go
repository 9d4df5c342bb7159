package clustertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// produce writes n records "tag-i" to topic's partition 0 with acks=all,
// one at a time, and fails the test on the first that is not
// acknowledged within within.
func produce(t *testing.T, cl *kgo.Client, topic, tag string, n int, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %s-%d: %v", tag, i, err)
		}
	}
}

// producer is a client that writes with acks=all to the partition a
// record names (kgo.ManualPartitioner), so every record lands on
// partition 0.
func producer(c testkit.Cluster, opts ...kgo.Opt) *kgo.Client {
	return c.Client(append([]kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
}

// readAll reads topic's partition 0 from the start until it has want
// records, through the whole cluster, and returns their values in order.
func readAll(t *testing.T, c testkit.Cluster, topic string, want int, opts ...kgo.Opt) []string {
	t.Helper()
	cl := c.Client(append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}})}, opts...)...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s: %v", len(got), want, topic, got)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// values are "tag-0" .. "tag-(n-1)".
func values(tag string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", tag, i)
	}
	return out
}

// probeApiVersions does one ApiVersions round trip with addr within d.
func probeApiVersions(addr string, d time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.DialTimeout(d))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err = cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrApiVersionsRequest())
	return err
}

// upSeenBy are the nodes node id sees up (its /v1/cluster), itself
// included.
func upSeenBy(c *testkit.LocalCluster, id int32) ([]int32, error) {
	v, err := c.View(id)
	if err != nil {
		return nil, err
	}
	var up []int32
	for _, n := range v.Nodes {
		if n.Up {
			up = append(up, n.ID)
		}
	}
	slices.Sort(up)
	return up, nil
}

// brokersListed are the brokers the Metadata of the node at addr lists.
func brokersListed(addr string) ([]int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest())
	if err != nil {
		return nil, err
	}
	var ids []int32
	for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	return ids, nil
}
