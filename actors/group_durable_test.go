package actors

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A restarted node rebuilds the group from __consumer_offsets: same
// generation, members and assignments, and its members carry on without
// a rebalance.
func TestClassicGroupSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	h := newGroupHarness(t, dir)
	createTopic(t, h.b, "t")
	inst := "static-1"
	r := h.call("g", joinReq("", &inst, "range")).(*kmsg.JoinGroupResponse)
	id := r.MemberID
	errCode(t, "sync", h.call("g", syncReq(id, 1, map[string]string{id: "x"})).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	errCode(t, "commit", h.call("g", commitReq(id, 1, "t", 42)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	if err := h.b.Close(); err != nil {
		t.Fatal(err)
	}

	h = newGroupHarness(t, dir)
	defer h.b.Close()
	d := h.describe("g")
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != id || string(d.Members[0].MemberAssignment) != "x" ||
		d.Members[0].InstanceID == nil || *d.Members[0].InstanceID != inst {
		t.Fatalf("reloaded: %+v", d)
	}
	errCode(t, "heartbeat after restart", h.call("g", heartbeatReq(id, 1, &inst)).(*kmsg.HeartbeatResponse).ErrorCode, nil)
	if o, ok := h.b.groups.store(h.b.groups.partitionFor("g")).offset("g", "t", 0); !ok || o.Offset != 42 {
		t.Fatalf("offset after restart: %+v %v", o, ok)
	}
}

// The sweep expires a simple consumer's offsets retention after their
// commit, and an empty group's with the group itself; a live group's
// subscribed offsets stay.
func TestGroupOffsetExpiry(t *testing.T) {
	h := newGroupHarness(t, t.TempDir())
	defer h.b.Close()
	createTopic(t, h.b, "t")
	store := func(g string) *groupStore { return h.b.groups.store(h.b.groups.partitionFor(g)) }

	simple := commitReq("", -1, "t", 3)
	simple.Group = "simple"
	errCode(t, "simple commit", h.call("simple", simple).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)

	ja, a := h.join("range")
	h.await(ja)
	errCode(t, "sync", h.call("g", syncReq(a, 1, map[string]string{a: "x"})).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	errCode(t, "member commit", h.call("g", commitReq(a, 1, "t", 9)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)

	later := time.Now().Add(h.b.cfg.OffsetsRetention + time.Minute)
	h.b.groups.sweep(later)
	waitFor(t, 5*time.Second, "simple consumer's offsets expired", func() error {
		if store("simple").has("simple") {
			return fmt.Errorf("still stored")
		}
		return nil
	})
	if _, ok := store("g").offset("g", "t", 0); !ok {
		t.Fatal("a live group's offset expired")
	}

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group, leave.MemberID = 0, "g", a
	errCode(t, "leave v0", h.call("g", leave).(*kmsg.LeaveGroupResponse).ErrorCode, nil)
	waitFor(t, 5*time.Second, "empty group stored", func() error {
		if md := store("g").metadata("g"); md == nil || len(md.Members) != 0 {
			return fmt.Errorf("metadata %+v", md)
		}
		return nil
	})
	h.b.groups.sweep(time.Now().Add(h.b.cfg.OffsetsRetention / 2))
	if _, ok := store("g").offset("g", "t", 0); !ok {
		t.Fatal("offsets of a group empty for less than the retention expired")
	}
	h.b.groups.sweep(later)
	waitFor(t, 5*time.Second, "empty group expired", func() error {
		if store("g").has("g") {
			return fmt.Errorf("still stored: %+v", store("g").metadata("g"))
		}
		return nil
	})
	if d := h.describe("g"); d.State != "Dead" {
		t.Fatalf("expired group: %+v", d)
	}
}

// OffsetDelete refuses the topics a live consumer group subscribes to.
func TestOffsetDeleteSubscribedTopic(t *testing.T) {
	h := newGroupHarness(t, t.TempDir())
	defer h.b.Close()
	createTopic(t, h.b, "t")
	createTopic(t, h.b, "other")
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
	s := h.b.groups.store(h.b.groups.partitionFor("g"))
	if _, ok := s.offset("g", "other", 0); ok {
		t.Fatal("offset of the unsubscribed topic still there")
	}
	if _, ok := s.offset("g", "t", 0); !ok {
		t.Fatal("offset of the subscribed topic deleted")
	}
	if err, _ := h.ask("g", &deleteOp{}).(*kerr.Error); err != kerr.NonEmptyGroup {
		t.Fatalf("delete of a live group: %v", err)
	}
}
