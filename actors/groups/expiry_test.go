package groups

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// The sweep expires a simple consumer's offsets retention after their
// commit, and an empty group's with the group itself; a live group's
// subscribed offsets stay.
func TestGroupOffsetExpiry(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	h.createTopic("t", 1)
	store := func(g string) *groupStore { return h.store(g) }

	simple := commitReq("", -1, "t", 3)
	simple.Group = "simple"
	errCode(t, "simple commit", h.call("simple", simple).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)

	ja, a := h.join("range")
	h.await(ja)
	errCode(t, "sync", h.call("g", syncReq(a, 1, map[string]string{a: "x"})).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	errCode(t, "member commit", h.call("g", commitReq(a, 1, "t", 9)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)

	later := time.Now().Add(h.co.cfg.OffsetsRetention + time.Minute)
	h.co.sweep(later)
	wait.For(t, 5*time.Second, func() error { // until simple consumer's offsets expired
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
	wait.For(t, 5*time.Second, func() error { // until empty group stored
		if md := store("g").metadata("g"); md == nil || len(md.Members) != 0 {
			return fmt.Errorf("metadata %+v", md)
		}
		return nil
	})
	h.co.sweep(time.Now().Add(h.co.cfg.OffsetsRetention / 2))
	if _, ok := store("g").offset("g", "t", 0); !ok {
		t.Fatal("offsets of a group empty for less than the retention expired")
	}
	h.co.sweep(later)
	wait.For(t, 5*time.Second, func() error { // until empty group expired
		if store("g").has("g") {
			return fmt.Errorf("still stored: %+v", store("g").metadata("g"))
		}
		return nil
	})
	if d := h.describe("g"); d.State != "Dead" {
		t.Fatalf("expired group: %+v", d)
	}
}
