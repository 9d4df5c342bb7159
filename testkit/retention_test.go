package testkit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestRetentionBytes produces to a topic with tiny segments and a small
// retention.bytes, then checks what Kafka does once the oldest segments are
// deleted: ListOffsets earliest moves above 0 while latest stays, consuming
// from the earliest offset reads every record from there on, a client that
// asks for offset 0 resets to the earliest, and a raw Fetch of offset 0
// answers OFFSET_OUT_OF_RANGE with the new log start offset.
func TestRetentionBytes(t *testing.T) {
	SkipUnlessChronik(t, "chronik-specific: kfake does not enforce retention")
	b := StartBroker(t)
	addr := b.Addr()
	const topic = "retention-bytes"
	const records = 60
	seg, ret := "1024", "3000"
	CreateTopic(t, addr, topic, 1, map[string]*string{"segment.bytes": &seg, "retention.bytes": &ret})

	cl := NewClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	value := func(i int64) string { return fmt.Sprintf("record-%03d-%0200d", i, i) }
	for i := range int64(records) {
		r := &kgo.Record{Value: []byte(value(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if r.Offset != i {
			t.Fatalf("record %d acknowledged at offset %d", i, r.Offset)
		}
	}

	// Each record is its own ~280-byte batch, three to a segment: the log
	// keeps at least 3000 bytes, so about 11 records and more, and drops
	// the segments older than that.
	adm := kadm.NewClient(cl)
	var start int64
	wait.For(t, 30*time.Second, func() error {
		offs, err := adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			return err
		}
		o, _ := offs.Lookup(topic, 0)
		// Retention runs at the replica's next tick after a roll: the
		// start catches up with the produced data shortly after it.
		if start = o.Offset; start < records-20 {
			return fmt.Errorf("earliest offset %d", start)
		}
		return nil
	})
	t.Logf("earliest offset %d, latest %d", start, records)
	if start > records-10 {
		t.Fatalf("earliest offset %d: retention kept %d records, want about 3000 bytes' worth", start, records-start)
	}
	if end := endOffsets(t, addr, topic)[0]; end != records {
		t.Fatalf("latest offset %d, want %d", end, records)
	}

	// From the earliest offset, and from 0 (out of range: the client resets
	// to the earliest), every record to the end, in order.
	for _, from := range []kgo.Offset{kgo.NewOffset().AtStart(), kgo.NewOffset().At(0)} {
		ccl := NewClient(t, addr,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: from}}),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(200*time.Millisecond))
		next := start
		for next < records {
			fs := ccl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consume from %v: read up to %d of %d (%v)", from, next, records, fs.Err())
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Logf("consume from %v: %v", from, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next || string(r.Value) != value(next) {
					t.Fatalf("consume from %v: got offset %d %.10q, want %d", from, r.Offset, r.Value, next)
				}
				next++
			})
		}
		ccl.Close()
	}

	// A raw Fetch below the log start offset.
	c := dialRaw(t, addr)
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 100
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset = 0
	fp.CurrentLeaderEpoch = -1
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp := c.roundTripAt(req, min(c.version(req.Key()), 12)).(*kmsg.FetchResponse) // 12: topics by name
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("Fetch: error %d, %+v", resp.ErrorCode, resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != kerr.OffsetOutOfRange {
		t.Fatalf("Fetch offset 0: %v, want OFFSET_OUT_OF_RANGE", err)
	}
	if p.LogStartOffset != start || p.HighWatermark != records {
		t.Fatalf("Fetch offset 0: log start %d, high watermark %d; want %d, %d", p.LogStartOffset, p.HighWatermark, start, records)
	}
}
