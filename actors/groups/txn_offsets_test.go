package groups

import (
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// The transactional side of offsets, through the coordinator on the fake
// node: TxnOffsetCommit writes one transactional batch, the store keeps it
// pending, and a marker written through the partition (as the transaction
// coordinator's WriteTxnMarkers does) commits or aborts it.

func txnCommitReq(group string, pid int64, epoch int16, topic string, partition int32, offset int64) *kmsg.TxnOffsetCommitRequest {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.Version, r.TransactionalID, r.Group, r.ProducerID, r.ProducerEpoch = 5, "txn", group, pid, epoch
	t := kmsg.NewTxnOffsetCommitRequestTopic()
	t.Topic = topic
	p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset = partition, offset
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	return r
}

// txnCommit sends a TxnOffsetCommit and returns its partitions' errors in
// request order.
func (h *groupHarness) txnCommit(req *kmsg.TxnOffsetCommitRequest) []int16 {
	h.t.Helper()
	resp := h.call(req.Group, req).(*kmsg.TxnOffsetCommitResponse)
	var codes []int16
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			codes = append(codes, p.ErrorCode)
		}
	}
	return codes
}

// marker writes producer pid's transaction marker to the offsets
// partition of group, through its replica, and waits until it is applied.
func (h *groupHarness) marker(group string, pid int64, epoch int16, commit bool) {
	h.t.Helper()
	r := h.node.replicas[h.co.PartitionFor(group)]
	f := actor.NewFuture(h.sys, 10*time.Second)
	h.sys.Root.Send(r.pid, &raftactor.Propose{
		Data:    raftactor.EncodeProduce(protocol.BuildControlBatch(pid, epoch, commit, 0, time.Now().UnixMilli())),
		ReplyTo: f.PID(),
	})
	v, err := f.Result()
	if err != nil {
		h.t.Fatalf("marker: %v", err)
	}
	if res := v.(*raftactor.Result); res.Err != nil || res.Value.(*raftactor.ProduceResult).Err != nil {
		h.t.Fatalf("marker: %+v", res)
	}
}

func offsetIs(t *testing.T, s *groupStore, group, topic string, partition int32, want int64) {
	t.Helper()
	o, ok := s.offset(group, topic, partition)
	switch {
	case want < 0 && ok:
		t.Fatalf("%s %s-%d: committed %d, want none", group, topic, partition, o.Offset)
	case want >= 0 && (!ok || o.Offset != want):
		t.Fatalf("%s %s-%d: committed %d (%v), want %d", group, topic, partition, o.Offset, ok, want)
	}
}

// A transaction's offsets stay pending, one transactional batch of the
// producer in the log, until its commit marker applies them.
func TestTxnOffsetCommitPendingUntilCommit(t *testing.T) {
	disk := newOffsetsDisk()
	h := newGroupHarness(t, disk)
	defer h.close()
	h.createTopic("t", 2)
	s := h.store("g")
	errCode(t, "plain commit", h.call("g", commitReq("", -1, "t", 3)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)

	p := h.co.PartitionFor("g")
	before := len(disk.batches[p])
	req := txnCommitReq("g", 7, 2, "t", 0, 10)
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, kmsg.TxnOffsetCommitRequestTopicPartition{Partition: 1, Offset: 20, LeaderEpoch: 4})
	for _, c := range h.txnCommit(req) {
		errCode(t, "txn commit", c, nil)
	}
	if got := len(disk.batches[p]) - before; got != 1 {
		t.Fatalf("%d batches written for one TxnOffsetCommit, want 1", got)
	}
	b := disk.batches[p][len(disk.batches[p])-1]
	bh, _ := protocol.ParseBatchHeader(b)
	if !bh.Transactional() || bh.Control() || bh.ProducerID != 7 || bh.ProducerEpoch != 2 || bh.BaseSequence != -1 || bh.NumRecords != 2 {
		t.Fatalf("batch header %+v, want a transactional batch of producer 7 epoch 2, sequence -1, 2 records", bh)
	}

	offsetIs(t, s, "g", "t", 0, 3)
	offsetIs(t, s, "g", "t", 1, -1)
	if o, ok := s.pendingOffset(7, "g", "t", 1); !ok || o.Offset != 20 || o.LeaderEpoch != 4 {
		t.Fatalf("pending t-1: %+v %v", o, ok)
	}
	if _, _, pending := h.co.FetchOffset("g", "t", 0); !pending {
		t.Fatal("FetchOffset does not report the pending offset")
	}
	h.marker("g", 8, 0, true) // another producer's marker changes nothing
	offsetIs(t, s, "g", "t", 0, 3)
	h.marker("g", 7, 2, true)
	offsetIs(t, s, "g", "t", 0, 10)
	offsetIs(t, s, "g", "t", 1, 20)
	if pp := s.pendingPartitions("g"); pp != nil {
		t.Fatalf("pending after commit: %v", pp)
	}
	if o, _ := s.offset("g", "t", 1); o.LeaderEpoch != 4 {
		t.Fatalf("leader epoch %d, want 4", o.LeaderEpoch)
	}
}

// An abort marker drops the transaction's offsets; the committed ones stay.
func TestTxnOffsetCommitAbort(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	h.createTopic("t", 1)
	errCode(t, "plain commit", h.call("g", commitReq("", -1, "t", 3)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	errCode(t, "txn commit", h.txnCommit(txnCommitReq("g", 7, 0, "t", 0, 10))[0], nil)
	h.marker("g", 7, 0, false)
	s := h.store("g")
	offsetIs(t, s, "g", "t", 0, 3)
	if s.hasPending("g", "t", 0) {
		t.Fatal("aborted offset still pending")
	}
	// The producer's next transaction starts afresh.
	errCode(t, "txn commit", h.txnCommit(txnCommitReq("g", 7, 0, "t", 0, 11))[0], nil)
	h.marker("g", 7, 0, true)
	offsetIs(t, s, "g", "t", 0, 11)
}

// Pending offsets are part of the log: a restarted node has them pending
// still, and the marker that arrives after the restart applies them; a
// transaction that ended before the restart reloads as it ended.
func TestTxnOffsetsSurviveRestart(t *testing.T) {
	disk := newOffsetsDisk()
	h := newGroupHarness(t, disk)
	h.createTopic("t", 3)
	errCode(t, "txn 7", h.txnCommit(txnCommitReq("g", 7, 0, "t", 0, 10))[0], nil)
	errCode(t, "txn 8", h.txnCommit(txnCommitReq("g", 8, 0, "t", 1, 20))[0], nil)
	errCode(t, "txn 9", h.txnCommit(txnCommitReq("g", 9, 0, "t", 2, 30))[0], nil)
	h.marker("g", 8, 0, true)
	h.marker("g", 9, 0, false)
	h.close()

	h = newGroupHarness(t, disk)
	defer h.close()
	s := h.store("g")
	offsetIs(t, s, "g", "t", 0, -1)
	offsetIs(t, s, "g", "t", 1, 20)
	offsetIs(t, s, "g", "t", 2, -1)
	if !s.hasPending("g", "t", 0) || s.hasPending("g", "t", 2) {
		t.Fatalf("pending after reload: %v", s.pendingPartitions("g"))
	}
	h.marker("g", 7, 0, true)
	offsetIs(t, s, "g", "t", 0, 10)
}

// Of a plain commit and a transaction's, the later record wins, whenever
// the transaction commits: what compaction of the log keeps too.
func TestTxnOffsetsLaterRecordWins(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	h.createTopic("t", 2)
	s := h.store("g")
	// t-0: the transaction's record, then a plain commit, then the marker.
	errCode(t, "txn", h.txnCommit(txnCommitReq("g", 7, 0, "t", 0, 10))[0], nil)
	errCode(t, "plain", h.call("g", commitReq("", -1, "t", 20)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	// t-1: a plain commit, then the transaction's record.
	c := commitReq("", -1, "t", 50)
	c.Topics[0].Partitions[0].Partition = 1
	errCode(t, "plain t-1", h.call("g", c).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	errCode(t, "txn t-1", h.txnCommit(txnCommitReq("g", 7, 0, "t", 1, 40))[0], nil)
	h.marker("g", 7, 0, true)
	offsetIs(t, s, "g", "t", 0, 20)
	offsetIs(t, s, "g", "t", 1, 40)
}

// Deleting offsets (OffsetDelete, DeleteGroups) deletes pending ones too,
// so a transaction that commits afterwards brings nothing back.
func TestTxnOffsetsDeleted(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	h.createTopic("t", 2)
	s := h.store("g")
	errCode(t, "txn", h.txnCommit(txnCommitReq("g", 7, 0, "t", 0, 10))[0], nil)
	errCode(t, "txn t-1", h.txnCommit(txnCommitReq("g", 7, 0, "t", 1, 11))[0], nil)
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g"
	del.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	errCode(t, "offset delete", h.call("g", del).(*kmsg.OffsetDeleteResponse).ErrorCode, nil)
	if s.hasPending("g", "t", 0) || !s.hasPending("g", "t", 1) {
		t.Fatalf("pending after OffsetDelete of t-0: %v", s.pendingPartitions("g"))
	}
	if err, _ := h.ask("g", &DeleteOp{}).(*kerr.Error); err != nil {
		t.Fatalf("delete group: %v", err)
	}
	h.marker("g", 7, 0, true)
	offsetIs(t, s, "g", "t", 0, -1)
	offsetIs(t, s, "g", "t", 1, -1)
	if s.has("g") {
		t.Fatal("deleted group is back after its transaction committed")
	}
}

// A group with pending offsets is not expired, nor is an offset a
// transaction is committing.
func TestTxnOffsetsHoldExpiry(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	h.createTopic("t", 1)
	errCode(t, "plain", h.call("g", commitReq("", -1, "t", 3)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	errCode(t, "txn", h.txnCommit(txnCommitReq("g", 7, 0, "t", 0, 10))[0], nil)
	h.co.sweep(time.Now().Add(365 * 24 * time.Hour))
	h.describe("g") // the expiry check ran before this is answered
	s := h.store("g")
	offsetIs(t, s, "g", "t", 0, 3)
	if !s.hasPending("g", "t", 0) {
		t.Fatal("pending offset gone after expiry")
	}
}

// The checks of Kafka's validateTransactionalOffsetCommit.
func TestTxnOffsetCommitErrors(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	h.createTopic("t", 1)
	with := func(gen int32, member string, instance *string) *kmsg.TxnOffsetCommitRequest {
		r := txnCommitReq("g", 7, 0, "t", 0, 1)
		r.Generation, r.MemberID, r.InstanceID = gen, member, instance
		return r
	}
	// No group yet: generation -1 is a simple group's commit, whatever
	// member it names; a generation is of a group that no longer exists.
	errCode(t, "unknown group, generation 1", h.txnCommit(with(1, "m", nil))[0], kerr.IllegalGeneration)
	errCode(t, "unknown group, generation -1, a member id", h.txnCommit(with(-1, "m", nil))[0], nil)
	h.marker("g", 7, 0, false)

	inst := "i-1"
	r := h.call("g", joinReq("", &inst, "range")).(*kmsg.JoinGroupResponse)
	id := r.MemberID
	errCode(t, "sync", h.call("g", syncReq(id, 1, map[string]string{id: "x"})).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	other := "i-2"
	for _, c := range []struct {
		what     string
		gen      int32
		member   string
		instance *string
		want     *kerr.Error
	}{
		{"member", 1, id, &inst, nil},
		{"member without instance id", 1, id, nil, nil},
		{"no member at all", -1, "", nil, nil}, // a producer outside group management
		{"old generation", 0, id, &inst, kerr.IllegalGeneration},
		{"unknown member", 1, "nobody", nil, kerr.UnknownMemberID},
		{"fenced instance", 1, "nobody", &inst, kerr.FencedInstanceID},
		{"unknown instance", 1, id, &other, kerr.UnknownMemberID},
		{"member id with generation -1", -1, "nobody", nil, kerr.UnknownMemberID},
	} {
		errCode(t, c.what, h.txnCommit(with(c.gen, c.member, c.instance))[0], c.want)
	}
	// v0-v2 name no member: decoded, the generation is its default, -1.
	v2 := txnCommitReq("g", 7, 0, "t", 0, 1)
	v2.Version = 2
	var dec kmsg.TxnOffsetCommitRequest
	dec.Version = 2
	if err := dec.ReadFrom(v2.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	errCode(t, "v2 while the group has members", h.txnCommit(&dec)[0], nil)
	h.marker("g", 7, 0, false)

	// Per partition: unknown topics and partitions, too-large metadata;
	// the others are written.
	req := txnCommitReq("g", 7, 0, "t", 0, 5)
	big := strings.Repeat("x", maxOffsetMetadata+1)
	req.Topics[0].Partitions = append(req.Topics[0].Partitions,
		kmsg.TxnOffsetCommitRequestTopicPartition{Partition: 1, Offset: 5},
		kmsg.TxnOffsetCommitRequestTopicPartition{Partition: 0, Offset: 5, Metadata: &big})
	req.Topics = append(req.Topics, kmsg.TxnOffsetCommitRequestTopic{Topic: "nope", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0}}})
	codes := h.txnCommit(req)
	for i, want := range []*kerr.Error{nil, kerr.UnknownTopicOrPartition, kerr.OffsetMetadataTooLarge, kerr.UnknownTopicOrPartition} {
		errCode(t, "partition "+string(rune('0'+i)), codes[i], want)
	}
	// Unknown partitions win over a group error, as Kafka answers them
	// before its coordinator sees the request.
	bad := with(9, id, nil)
	bad.Topics = append(bad.Topics, kmsg.TxnOffsetCommitRequestTopic{Topic: "nope", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0}}})
	codes = h.txnCommit(bad)
	errCode(t, "group error", codes[0], kerr.IllegalGeneration)
	errCode(t, "unknown topic beside a group error", codes[1], kerr.UnknownTopicOrPartition)
	// No producer, no transaction.
	errCode(t, "producer id -1", h.txnCommit(txnCommitReq("g", -1, -1, "t", 0, 1))[0], kerr.InvalidProducerIDMapping)
}

// A KIP-848 consumer group: members commit with their epoch; a stale one
// is ILLEGAL_GENERATION (not STALE_MEMBER_EPOCH) for TxnOffsetCommit.
func TestTxnOffsetCommitConsumerGroup(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	topic := h.createTopic("t", 1)
	resp := h.call("g", cghReq("m-1", 0, topic, nil)).(*kmsg.ConsumerGroupHeartbeatResponse)
	errCode(t, "heartbeat", resp.ErrorCode, nil)
	epoch := resp.MemberEpoch
	with := func(gen int32, member string) *kmsg.TxnOffsetCommitRequest {
		r := txnCommitReq("g", 7, 0, "t", 0, 1)
		r.Generation, r.MemberID = gen, member
		return r
	}
	errCode(t, "member at its epoch", h.txnCommit(with(epoch, "m-1"))[0], nil)
	errCode(t, "stale epoch", h.txnCommit(with(epoch-1, "m-1"))[0], kerr.IllegalGeneration)
	errCode(t, "unknown member", h.txnCommit(with(epoch, "m-2"))[0], kerr.UnknownMemberID)
	errCode(t, "no member while the group has members", h.txnCommit(with(-1, ""))[0], kerr.UnknownMemberID)
}
