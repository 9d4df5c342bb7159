package groups

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete on a live "consumer" group whose subscriptions cannot be
// read (metadata not in the consumer protocol's schema) refuses, as
// Kafka's isSubscribedToTopic does when it does not know, instead of
// deleting offsets the members may be consuming from.
func TestOffsetDeleteUnknownSubscriptions(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	h.createTopic("t", 1)
	ja, a := h.join("range") // metadata "meta-range": not ConsumerMemberMetadata
	errCode(t, "join", h.await(ja).(*kmsg.JoinGroupResponse).ErrorCode, nil)
	errCode(t, "sync", h.call("g", syncReq(a, 1, map[string]string{a: "x"})).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	errCode(t, "commit", h.call("g", commitReq(a, 1, "t", 5)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)

	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g"
	dt := kmsg.NewOffsetDeleteRequestTopic()
	dt.Topic = "t"
	dt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	del.Topics = append(del.Topics, dt)
	r := h.call("g", del).(*kmsg.OffsetDeleteResponse)
	errCode(t, "offset delete", r.ErrorCode, nil)
	errCode(t, "offset delete partition", r.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	if o, ok := h.store("g").offset("g", "t", 0); !ok || o.Offset != 5 {
		t.Fatalf("offset after refused delete: %+v %v", o, ok)
	}
}

// OffsetDelete refuses the topics a live consumer group subscribes to.
func TestOffsetDeleteSubscribedTopic(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	h.createTopic("t", 1)
	h.createTopic("other", 1)
	meta := kmsg.ConsumerMemberMetadata{Topics: []string{"t"}}
	req := joinReq("", nil)
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	ja, a := h.joinWith(req)
	h.await(ja)
	errCode(t, "sync", h.call("g", syncReq(a, 1, nil)).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	for _, topic := range []string{"t", "other"} {
		errCode(t, "commit "+topic, h.call("g", commitReq(a, 1, topic, 1)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	}
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g"
	for _, topic := range []string{"t", "other"} {
		dt := kmsg.NewOffsetDeleteRequestTopic()
		dt.Topic, dt.Partitions = topic, []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
		del.Topics = append(del.Topics, dt)
	}
	resp := h.call("g", del).(*kmsg.OffsetDeleteResponse)
	errCode(t, "offset delete", resp.ErrorCode, nil)
	errCode(t, "subscribed topic", resp.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	errCode(t, "other topic", resp.Topics[1].Partitions[0].ErrorCode, nil)
	s := h.store("g")
	if _, ok := s.offset("g", "other", 0); ok {
		t.Fatal("offset of the unsubscribed topic still there")
	}
	if _, ok := s.offset("g", "t", 0); !ok {
		t.Fatal("offset of the subscribed topic deleted")
	}
	if err, _ := h.ask("g", &DeleteOp{}).(*kerr.Error); err != kerr.NonEmptyGroup {
		t.Fatalf("delete of a live group: %v", err)
	}
}
