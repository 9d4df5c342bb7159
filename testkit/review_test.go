package testkit

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestReviewOffsetForLeaderEpochAfterRestart: after a restart the leader
// epoch grows without any write in it. A consumer that took its position
// from ListOffsets then validates it with that epoch (the Java consumer
// does so after every leader change); the answer must be the epoch and the
// log end, not UNDEFINED, which the Java consumer reads as truncation and
// answers by resetting its offset.
func TestReviewOffsetForLeaderEpochAfterRestart(t *testing.T) {
	SkipUnlessChronik(t, "chronik-specific restart check")
	p := StartProcess(t, t.TempDir())
	const topic = "review-epoch"
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

// TestReviewFetchSessionNotBlockedByOtherClient: a fetch naming a session
// whose own fetch is long-polling is refused at once. It used to wait for
// the long poll under the node-wide session lock, stalling every session
// fetch of the node meanwhile.
func TestReviewFetchSessionNotBlockedByOtherClient(t *testing.T) {
	tg := StartTarget(t)
	tg.SkipOnKfake(t, "chronik fetch-session locking")
	const topic = "review-sessions"
	CreateTopic(t, tg.Addr(), topic, 1, nil)
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(1, 12)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	fetchReq := func(id, epoch, maxWait int32) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = maxWait
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		req.SessionID, req.SessionEpoch = id, epoch
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}

	owner := NewClient(t, tg.Addr(), kgo.MaxVersions(versions))
	open, err := fetchReq(0, 0, 10).RequestWith(ctx, owner)
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	if err := kerr.ErrorForCode(open.ErrorCode); err != nil || open.SessionID == 0 {
		t.Fatalf("open session: id %d, err %v", open.SessionID, err)
	}
	id := open.SessionID

	// The owner's incremental fetch parks for 3 s: the topic is empty.
	polled := make(chan error, 1)
	go func() {
		resp, err := fetchReq(id, 1, 3000).RequestWith(ctx, owner)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		polled <- err
	}()
	time.Sleep(300 * time.Millisecond) // let the long poll take the session

	intruder := NewClient(t, tg.Addr(), kgo.MaxVersions(versions))
	start := time.Now()
	resp, err := fetchReq(id, 2, 10).RequestWith(ctx, intruder)
	if err != nil {
		t.Fatalf("intruding fetch: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("fetch naming a busy session took %v: it waited for the other client's long poll", took)
	}
	if resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("fetch naming a busy session: %v, want INVALID_FETCH_SESSION_EPOCH", kerr.ErrorForCode(resp.ErrorCode))
	}
	if err := <-polled; err != nil {
		t.Fatalf("owner's long poll: %v", err)
	}
}

// TestReviewCreateTopicsTooManyPartitions: a CreateTopics asking for more
// than 10000 partitions in all is refused whole with POLICY_VIOLATION, as
// KRaft does, instead of the node allocating 2^31-1 partitions and dying.
func TestReviewCreateTopicsTooManyPartitions(t *testing.T) {
	tg := StartTarget(t)
	tg.SkipOnKfake(t, "KRaft's per-request partition cap")
	cl := NewClient(t, tg.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	for _, c := range []struct {
		name       string
		partitions int32
	}{{"review-huge", math.MaxInt32}, {"review-small", 1}} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = c.name, c.partitions, 1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	for _, st := range resp.Topics {
		if st.ErrorCode != kerr.PolicyViolation.Code {
			t.Fatalf("topic %s: %v, want POLICY_VIOLATION", st.Topic, kerr.ErrorForCode(st.ErrorCode))
		}
	}
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	name := "review-small"
	mt.Topic = &name
	md.Topics = append(md.Topics, mt)
	mresp, err := md.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("Metadata after the refused create: %v", err)
	}
	if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("review-small after a refused request: %+v, want UNKNOWN_TOPIC_OR_PARTITION", mresp.Topics)
	}
}
