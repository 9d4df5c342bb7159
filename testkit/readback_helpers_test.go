package testkit

// Helpers that read a topic back: its end offsets, every record up to
// them, and a produce-then-consume probe that the broker still serves.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// endOffsets is each partition's high watermark.
func endOffsets(t testing.TB, addr, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(NewClient(t, addr))
	var ends kadm.ListedOffsets
	wait.For(t, 30*time.Second, func() error {
		var err error
		ends, err = adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		return err
	})
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// consumeAll reads every partition of topic from offset 0 up to ends and
// returns the records per partition, in the order received.
func consumeAll(t testing.TB, addr, topic string, ends map[int32]int64) map[int32][]*kgo.Record {
	t.Helper()
	start := map[int32]kgo.Offset{}
	for p := range ends {
		start[p] = kgo.NewOffset().At(0)
	}
	cl := NewClient(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	defer cl.Close()
	got := map[int32][]*kgo.Record{}
	done := func() bool {
		for p, end := range ends {
			if rs := got[p]; end > 0 && (len(rs) == 0 || rs[len(rs)-1].Offset < end-1) {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var lastErr error
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			counts := map[int32]int{}
			for p, rs := range got {
				counts[p] = len(rs)
			}
			t.Fatalf("consume %s: timed out with %v records of %v (last fetch error: %v)", topic, counts, ends, lastErr)
		}
		fs.EachError(func(_ string, p int32, err error) { lastErr = fmt.Errorf("partition %d: %w", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				got[r.Partition] = append(got[r.Partition], r)
			}
		})
	}
	return got
}

// assertServes checks that the broker still works for a well-behaved
// client: a fresh kgo client produces one record to topic and reads it
// back at the offset it was acknowledged with.
func assertServes(t testing.TB, addr, topic string) {
	t.Helper()
	value := fmt.Sprintf("alive-%d", time.Now().UnixNano())
	pcl := NewClient(t, addr, kgo.DefaultProduceTopic(topic))
	defer pcl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := pcl.ProduceSync(ctx, &kgo.Record{Value: []byte(value)}).First()
	if err != nil {
		t.Fatalf("broker no longer serves: produce: %v", err)
	}
	ccl := NewClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {r.Partition: kgo.NewOffset().At(r.Offset)},
	}))
	defer ccl.Close()
	for {
		fs := ccl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("broker no longer serves: record produced at %d/%d not consumed: %v", r.Partition, r.Offset, fs.Err())
		}
		var got *kgo.Record
		fs.EachRecord(func(rec *kgo.Record) {
			if got == nil && rec.Offset == r.Offset {
				got = rec
			}
		})
		if got != nil {
			if string(got.Value) != value {
				t.Fatalf("broker no longer serves: offset %d holds %q, produced %q", r.Offset, got.Value, value)
			}
			return
		}
	}
}
