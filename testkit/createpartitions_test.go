package testkit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestCreatePartitions grows a topic from 2 to 5 partitions with kadm:
// Metadata then lists 5, and a record produced to the new partition 4 is
// read back there at offset 0; asking for fewer partitions than the topic
// has is INVALID_PARTITIONS, and an unknown topic UNKNOWN_TOPIC_OR_PARTITION.
func TestCreatePartitions(t *testing.T) {
	tg := StartTarget(t)
	const topic = "create-partitions"
	CreateTopic(t, tg.Addr(), topic, 2, nil)
	cl := NewClient(t, tg.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	res, err := adm.UpdatePartitions(ctx, 5, topic)
	if err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	if r, err := res.On(topic, nil); err != nil || r.Err != nil {
		t.Fatalf("create partitions of %s: %v %v", topic, err, r.Err)
	}
	wait.For(t, 30*time.Second, func() error {
		tds, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return err
		}
		if n := len(tds[topic].Partitions); n != 5 {
			return errors.New("metadata does not list 5 partitions yet")
		}
		return nil
	})
	r := &kgo.Record{Topic: topic, Partition: 4, Value: []byte("in a new partition")}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("produce to the new partition: %v", err)
	}
	if r.Partition != 4 || r.Offset != 0 {
		t.Fatalf("record at partition %d offset %d, want 4 and 0", r.Partition, r.Offset)
	}
	got := consumeAll(t, tg.Addr(), topic, map[int32]int64{4: 1})
	if len(got[4]) != 1 || string(got[4][0].Value) != "in a new partition" {
		t.Fatalf("partition 4 holds %v", got[4])
	}

	res, err = adm.UpdatePartitions(ctx, 3, topic)
	if err != nil {
		t.Fatalf("shrink request: %v", err)
	}
	if r, _ := res.On(topic, nil); !errors.Is(r.Err, kerr.InvalidPartitions) {
		t.Fatalf("asking for fewer partitions: %v, want INVALID_PARTITIONS", r.Err)
	}
	res, err = adm.UpdatePartitions(ctx, 3, "no-such-topic")
	if err != nil {
		t.Fatalf("unknown topic request: %v", err)
	}
	if r, _ := res.On("no-such-topic", nil); !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", r.Err)
	}
}
