package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestListOffsets produces ten records, one batch each, with known and
// partly out-of-order timestamps, then asks ListOffsets for earliest (-2),
// latest (-1), a timestamp, a timestamp past every record, and
// max-timestamp (-3).
func TestListOffsets(t *testing.T) {
	tg := StartTarget(t)
	const topic = "list-offsets"
	CreateTopic(t, tg.Addr(), topic, 1, nil)

	// Offset i carries base + steps[i] seconds; offset 4 has the largest
	// timestamp, so max-timestamp and "earliest at or after" differ.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	steps := []int{0, 1, 2, 3, 9, 4, 5, 6, 7, 8}
	ts := func(i int) int64 { return base.Add(time.Duration(steps[i]) * time.Second).UnixMilli() }

	cl := NewClient(t, tg.Addr(), kgo.DefaultProduceTopic(topic))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range steps {
		r := &kgo.Record{Value: []byte{byte('a' + i)}, Timestamp: time.UnixMilli(ts(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if r.Offset != int64(i) {
			t.Fatalf("record %d acknowledged at offset %d", i, r.Offset)
		}
	}

	cases := []struct {
		name       string
		timestamp  int64
		wantOffset int64
		wantTS     int64 // -1: not checked (earliest/latest carry no timestamp)
	}{
		{"earliest", -2, 0, -1},
		{"latest", -1, int64(len(steps)), -1},
		{"by timestamp", base.Add(2500 * time.Millisecond).UnixMilli(), 3, ts(3)},
		{"exact timestamp", ts(2), 2, ts(2)},
		// Offset 5's own timestamp, but offset 4 comes first and is later.
		{"timestamp behind an out-of-order record", ts(5), 4, ts(4)},
		{"after the max timestamp", base.Add(time.Minute).UnixMilli(), -1, -1},
		{"max timestamp", -3, 4, ts(4)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID = -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = 0
			rp.CurrentLeaderEpoch = -1
			rp.Timestamp = c.timestamp
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatalf("ListOffsets: %v", err)
			}
			if c.timestamp == -3 && resp.Version < 7 {
				t.Fatalf("ListOffsets answered at v%d; max-timestamp (-3) needs v7+", resp.Version)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("ListOffsets: want one partition, got %+v", resp.Topics)
			}
			p := resp.Topics[0].Partitions[0]
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				t.Fatalf("ListOffsets(%d): %v", c.timestamp, err)
			}
			if p.Offset != c.wantOffset {
				t.Fatalf("ListOffsets(%d): offset %d, want %d", c.timestamp, p.Offset, c.wantOffset)
			}
			if c.wantTS != -1 && p.Timestamp != c.wantTS {
				t.Fatalf("ListOffsets(%d): timestamp %d, want %d", c.timestamp, p.Timestamp, c.wantTS)
			}
		})
	}
}
