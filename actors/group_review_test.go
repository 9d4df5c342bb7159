package actors

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A JoinGroup with an empty (non-null) group.instance.id is a dynamic
// member: it left the group without a stale static entry behind, so a
// second such join must not crash the group actor (it did: a nil member
// dereference in staticJoin, leaving the join unanswered).
func TestClassicEmptyInstanceIDIsDynamic(t *testing.T) {
	h := newGroupHarness(t, t.TempDir())
	defer h.b.Close()
	empty := ""
	ch, _ := h.joinWith(joinReq("", &empty, "range"))
	r := h.await(ch).(*kmsg.JoinGroupResponse)
	errCode(t, "join", r.ErrorCode, nil)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group, leave.MemberID = 0, "g", r.MemberID
	errCode(t, "leave", h.call("g", leave).(*kmsg.LeaveGroupResponse).ErrorCode, nil)

	ch, _ = h.joinWith(joinReq("", &empty, "range"))
	errCode(t, "join after leave", h.await(ch).(*kmsg.JoinGroupResponse).ErrorCode, nil)
}

// A member that leaves while its SyncGroup waits for the leader's
// assignment gets that SyncGroup answered: a request left unanswered
// blocks every later response on its connection.
func TestClassicLeaveAnswersHeldSync(t *testing.T) {
	h := newGroupHarness(t, t.TempDir())
	defer h.b.Close()
	ja, a := h.join("range")
	errCode(t, "join a", h.await(ja).(*kmsg.JoinGroupResponse).ErrorCode, nil)
	errCode(t, "sync a", h.call("g", syncReq(a, 1, map[string]string{a: "x"})).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	jb, b := h.join("range")
	h.pending(jb, "join b")
	ja = h.send("g", joinReq(a, nil, "range"))
	ra, rb := h.await(ja).(*kmsg.JoinGroupResponse), h.await(jb).(*kmsg.JoinGroupResponse)
	if ra.Generation != 2 || rb.Generation != 2 || ra.LeaderID != a {
		t.Fatalf("generation 2: a %+v b %+v", ra, rb)
	}
	syncB := h.send("g", syncReq(b, 2, nil))
	h.pending(syncB, "follower sync")
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group, leave.MemberID = 0, "g", b
	errCode(t, "leave b", h.call("g", leave).(*kmsg.LeaveGroupResponse).ErrorCode, nil)
	errCode(t, "held sync of b", h.await(syncB).(*kmsg.SyncGroupResponse).ErrorCode, kerr.UnknownMemberID)
}

// A member loaded from the log may name a server assignor this
// coordinator does not have (Kafka allows custom ones); the group must
// still compute its target with one it has, not call a nil assignor.
func TestPreferredAssignorIgnoresUnknown(t *testing.T) {
	var cg consumerGroup
	cg.init()
	cg.members["a"] = &consumerMember{id: "a", assignor: "custom"}
	cg.members["b"] = &consumerMember{id: "b", assignor: "custom"}
	cg.members["c"] = &consumerMember{id: "c", assignor: "range"}
	if got := cg.preferredAssignor(); got != "range" {
		t.Fatalf("preferred assignor %q, want range", got)
	}
	delete(cg.members, "c")
	if got := cg.preferredAssignor(); assignors[got] == nil {
		t.Fatalf("preferred assignor %q is not served", got)
	}
}

// OffsetDelete on a live "consumer" group whose subscriptions cannot be
// read (metadata not in the consumer protocol's schema) refuses, as
// Kafka's isSubscribedToTopic does when it does not know, instead of
// deleting offsets the members may be consuming from.
func TestOffsetDeleteUnknownSubscriptions(t *testing.T) {
	h := newGroupHarness(t, t.TempDir())
	defer h.b.Close()
	createTopic(t, h.b, "t")
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
	if o, ok := h.b.groups.store(h.b.groups.partitionFor("g")).offset("g", "t", 0); !ok || o.Offset != 5 {
		t.Fatalf("offset after refused delete: %+v %v", o, ok)
	}
}
