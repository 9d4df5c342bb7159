package testkit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/chronik-actor/chronik-actor/actors/groups"
	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestTxnOffsetCommitRaw drives TxnOffsetCommit with raw requests: the
// group coordinator accepts a transaction's offsets without asking the
// transaction coordinator, OffsetFetch does not show them (and answers
// UNSTABLE_OFFSET_COMMIT under RequireStable) until the transaction's
// marker reaches the group's __consumer_offsets partition; here a probe
// writes that marker through the replica, as WriteTxnMarkers will. An
// abort leaves the committed offset in force (asked by partition, and for
// every partition with OffsetFetch v7 and v9); a commit for a generation of
// a group that does not exist, or for an unknown topic, is refused.
func TestTxnOffsetCommitRaw(t *testing.T) {
	SkipUnlessChronik(t, "writes the marker through the node's replica")
	b := StartBroker(t)
	const topic, group = "txn-offsets", "txn-offsets-group"
	CreateTopic(t, b.Addr(), topic, 1, nil)
	cl := NewClient(t, b.Addr())
	v7 := kversion.Stable()
	v7.SetMaxKeyVersion(kmsg.OffsetFetch.Int16(), 7)
	cl7 := NewClient(t, b.Addr(), kgo.MaxVersions(v7))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	initReq := kmsg.NewPtrInitProducerIDRequest()
	initReq.TransactionTimeoutMillis = 60000
	initResp, err := initReq.RequestWith(ctx, cl)
	if err != nil || initResp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %v", err, kerr.ErrorForCode(initResp.ErrorCode))
	}
	pid, epoch := initResp.ProducerID, initResp.ProducerEpoch

	commit := func(tp string, generation int32, offset int64) error {
		t.Helper()
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = "txn-1", group, pid, epoch, generation
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = tp
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		var out error
		// The coordinator may still be loading __consumer_offsets.
		wait.For(t, 10*time.Second, func() error {
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatalf("TxnOffsetCommit: %v", err)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("TxnOffsetCommit answered %+v", resp)
			}
			out = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
			switch {
			case errors.Is(out, kerr.CoordinatorLoadInProgress), errors.Is(out, kerr.CoordinatorNotAvailable), errors.Is(out, kerr.NotCoordinator):
				return out
			}
			return nil
		})
		return out
	}
	fetch := func(stable bool) (int64, error) {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.RequireStable = stable
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = group
		rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
		req.Groups = append(req.Groups, rg)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("OffsetFetch: %v", err)
		}
		g := resp.Groups[0]
		if g.ErrorCode != 0 {
			t.Fatalf("OffsetFetch: %v", kerr.ErrorForCode(g.ErrorCode))
		}
		p := g.Topics[0].Partitions[0]
		return p.Offset, kerr.ErrorForCode(p.ErrorCode)
	}
	// fetchAll asks for every committed partition of the group, with
	// OffsetFetch v7 (one group, no batching) when v7 is set.
	fetchAll := func(v7 bool) (int64, error) {
		t.Helper()
		c := cl
		if v7 {
			c = cl7
		}
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group, req.RequireStable, req.Topics = group, true, nil
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = group
		req.Groups = append(req.Groups, rg)
		resp, err := req.RequestWith(ctx, c)
		if err != nil {
			t.Fatalf("OffsetFetch: %v", err)
		}
		var topics []kmsg.OffsetFetchResponseGroupTopic
		if v7 {
			if resp.Version != 7 || resp.ErrorCode != 0 {
				t.Fatalf("OffsetFetch v%d: %v", resp.Version, kerr.ErrorForCode(resp.ErrorCode))
			}
			for _, rt := range resp.Topics {
				gt := kmsg.OffsetFetchResponseGroupTopic{Topic: rt.Topic}
				for _, rp := range rt.Partitions {
					gt.Partitions = append(gt.Partitions, kmsg.OffsetFetchResponseGroupTopicPartition{Partition: rp.Partition, Offset: rp.Offset, ErrorCode: rp.ErrorCode})
				}
				topics = append(topics, gt)
			}
		} else {
			topics = resp.Groups[0].Topics
		}
		if len(topics) != 1 || topics[0].Topic != topic || len(topics[0].Partitions) != 1 {
			t.Fatalf("OffsetFetch of every partition: %+v, want %s-0 alone", topics, topic)
		}
		p := topics[0].Partitions[0]
		return p.Offset, kerr.ErrorForCode(p.ErrorCode)
	}
	marker := func(commit bool) {
		t.Helper()
		replica := b.Node().ReplicaPID(groups.OffsetsTopic, b.Node().GroupPartition(group))
		if replica == nil {
			t.Fatal("no replica of the group's offsets partition")
		}
		end := endOffsets(t, b.Addr(), groups.OffsetsTopic)[b.Node().GroupPartition(group)]
		p := NewProbe(t, b.Node().ActorSystem())
		batch := protocol.BuildControlBatch(pid, epoch, commit, 0, time.Now().UnixMilli())
		p.Send(replica, &raftactor.Propose{Data: raftactor.EncodeProduce(batch), ReplyTo: p.PID()})
		res := ExpectMsg[*raftactor.Result](p, 10*time.Second)
		pr, ok := res.Value.(*raftactor.ProduceResult)
		if res.Err != nil || !ok || pr.Err != nil {
			t.Fatalf("marker: %+v (%+v)", res, res.Value)
		}
		if pr.BaseOffset < end {
			// A partition that checked sequences on the broker's own
			// writes (sequence -1) would take the marker for a retry of
			// the offsets' batch and write nothing.
			t.Fatalf("marker answered with offset %d below the log end %d: taken for a duplicate of the broker's own write", pr.BaseOffset, end)
		}
	}
	expect := func(stable bool, want int64, wantErr error) {
		t.Helper()
		got, err := fetch(stable)
		if got != want || !errors.Is(err, wantErr) && err != wantErr {
			t.Fatalf("OffsetFetch (RequireStable %v): offset %d, %v; want %d, %v", stable, got, err, want, wantErr)
		}
	}

	if err := commit("no-such-topic", -1, 1); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", err)
	}
	if err := commit(topic, 3, 1); !errors.Is(err, kerr.IllegalGeneration) {
		t.Fatalf("a generation of a group without members: %v", err)
	}

	if err := commit(topic, -1, 42); err != nil {
		t.Fatalf("TxnOffsetCommit: %v", err)
	}
	expect(false, -1, nil)
	expect(true, -1, kerr.UnstableOffsetCommit)
	marker(true)
	expect(true, 42, nil)

	if err := commit(topic, -1, 50); err != nil {
		t.Fatalf("second TxnOffsetCommit: %v", err)
	}
	expect(false, 42, nil)
	expect(true, -1, kerr.UnstableOffsetCommit)
	for _, v7 := range []bool{false, true} {
		if off, err := fetchAll(v7); off != -1 || !errors.Is(err, kerr.UnstableOffsetCommit) {
			t.Fatalf("OffsetFetch of every partition (v7 %v) while pending: %d, %v", v7, off, err)
		}
	}
	marker(false)
	for _, v7 := range []bool{false, true} {
		if off, err := fetchAll(v7); off != 42 || err != nil {
			t.Fatalf("OffsetFetch of every partition (v7 %v) after the abort: %d, %v", v7, off, err)
		}
	}
	expect(true, 42, nil)

}
