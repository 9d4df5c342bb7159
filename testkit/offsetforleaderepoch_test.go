package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestOffsetForLeaderEpochAfterRestart: after a restart the leader
// epoch grows without any write in it. A consumer that took its position
// from ListOffsets then validates it with that epoch (the Java consumer
// does so after every leader change); the answer must be the epoch and the
// log end, not UNDEFINED, which the Java consumer reads as truncation and
// answers by resetting its offset.
func TestOffsetForLeaderEpochAfterRestart(t *testing.T) {
	SkipUnlessChronik(t, "chronik-specific restart check")
	p := StartProcess(t, t.TempDir())
	const topic = "epoch-after-restart"
	CreateTopic(t, p.Addr(), topic, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := NewClient(t, p.Addr(), kgo.DefaultProduceTopic(topic))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()
	p.Kill()
	p.Restart()

	cl = NewClient(t, p.Addr())
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp, lp.CurrentLeaderEpoch = -1, -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	var latest kmsg.ListOffsetsResponseTopicPartition
	wait.For(t, 30*time.Second, func() error {
		resp, err := lo.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		latest = resp.Topics[0].Partitions[0]
		return kerr.ErrorForCode(latest.ErrorCode)
	})
	if latest.Offset != 1 || latest.LeaderEpoch < 1 {
		t.Fatalf("ListOffsets latest: offset %d epoch %d, want offset 1 and an epoch", latest.Offset, latest.LeaderEpoch)
	}

	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.ReplicaID = -1
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = topic
	op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	op.CurrentLeaderEpoch, op.LeaderEpoch = latest.LeaderEpoch, latest.LeaderEpoch
	ot.Partitions = append(ot.Partitions, op)
	oe.Topics = append(oe.Topics, ot)
	resp, err := oe.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("OffsetForLeaderEpoch: %v", err)
	}
	got := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(got.ErrorCode); err != nil {
		t.Fatalf("OffsetForLeaderEpoch: %v", err)
	}
	if got.LeaderEpoch != latest.LeaderEpoch || got.EndOffset != 1 {
		t.Fatalf("OffsetForLeaderEpoch(%d) = (epoch %d, end %d), want (%d, 1)",
			latest.LeaderEpoch, got.LeaderEpoch, got.EndOffset, latest.LeaderEpoch)
	}
}
