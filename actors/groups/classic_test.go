package groups

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

func TestClassicJoinSyncRebalance(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	h.createTopic("t", 1)

	// A first member alone: the initial delay, then generation 1 with it as leader.
	ja, a := h.join("range", "roundrobin")
	ra := h.await(ja).(*kmsg.JoinGroupResponse)
	errCode(t, "join a", ra.ErrorCode, nil)
	if ra.Generation != 1 || ra.LeaderID != a || len(ra.Members) != 1 || *ra.Protocol != "range" {
		t.Fatalf("join a: %+v", ra)
	}
	sa := h.call("g", syncReq(a, 1, map[string]string{a: "a1"})).(*kmsg.SyncGroupResponse)
	if sa.ErrorCode != 0 || string(sa.MemberAssignment) != "a1" {
		t.Fatalf("sync a: %+v", sa)
	}

	// A second member (preferring roundrobin) triggers a rebalance that a
	// learns of from its heartbeat.
	jb, b := h.join("roundrobin", "range")
	h.pending(jb, "join b")
	errCode(t, "heartbeat a", h.call("g", heartbeatReq(a, 1, nil)).(*kmsg.HeartbeatResponse).ErrorCode, kerr.RebalanceInProgress)
	ja = h.send("g", joinReq(a, nil, "range", "roundrobin"))
	ra, rb := h.await(ja).(*kmsg.JoinGroupResponse), h.await(jb).(*kmsg.JoinGroupResponse)
	if ra.Generation != 2 || rb.Generation != 2 || ra.LeaderID != a || rb.LeaderID != a {
		t.Fatalf("generation 2: a %+v b %+v", ra, rb)
	}
	if len(ra.Members) != 2 || len(rb.Members) != 0 {
		t.Fatalf("member lists: leader %d, follower %d", len(ra.Members), len(rb.Members))
	}
	// One vote each: the tie breaks the same way every time.
	if *ra.Protocol != *rb.Protocol {
		t.Fatalf("protocols differ: %s %s", *ra.Protocol, *rb.Protocol)
	}
	proto := *ra.Protocol

	// The follower's sync waits for the leader's assignment.
	syncB := h.send("g", syncReq(b, 2, nil))
	h.pending(syncB, "follower sync")
	commitDuring := h.call("g", commitReq(a, 2, "t", 1)).(*kmsg.OffsetCommitResponse)
	errCode(t, "commit while completing", commitDuring.Topics[0].Partitions[0].ErrorCode, kerr.RebalanceInProgress)
	sa = h.call("g", syncReq(a, 2, map[string]string{a: "a2", b: "b2"})).(*kmsg.SyncGroupResponse)
	sb := h.await(syncB).(*kmsg.SyncGroupResponse)
	if string(sa.MemberAssignment) != "a2" || string(sb.MemberAssignment) != "b2" || *sb.Protocol != proto {
		t.Fatalf("assignments: a %+v b %+v", sa, sb)
	}

	errCode(t, "stale generation", h.call("g", heartbeatReq(b, 1, nil)).(*kmsg.HeartbeatResponse).ErrorCode, kerr.IllegalGeneration)
	errCode(t, "unknown member", h.call("g", heartbeatReq("nobody", 2, nil)).(*kmsg.HeartbeatResponse).ErrorCode, kerr.UnknownMemberID)
	errCode(t, "heartbeat b", h.call("g", heartbeatReq(b, 2, nil)).(*kmsg.HeartbeatResponse).ErrorCode, nil)

	bad := joinReq("", nil, "range")
	bad.ProtocolType = "connect"
	errCode(t, "other protocol type", h.call("g", bad).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)
	errCode(t, "no common protocol", h.call("g", joinReq("", nil, "sticky")).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)

	commit := func(member string, gen int32, off int64) int16 {
		return h.call("g", commitReq(member, gen, "t", off)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	errCode(t, "member commit", commit(a, 2, 5), nil)
	errCode(t, "old generation commit", commit(a, 1, 6), kerr.IllegalGeneration)
	errCode(t, "simple commit to a live group", commit("", -1, 6), kerr.UnknownMemberID)
	if o, _ := h.store("g").offset("g", "t", 0); o.Offset != 5 {
		t.Fatalf("committed %+v", o)
	}

	d := h.describe("g")
	if d.State != "Stable" || d.Protocol != proto || len(d.Members) != 2 || string(d.Members[0].MemberAssignment) == "" {
		t.Fatalf("describe: %+v", d)
	}

	// Both leave in one batched LeaveGroup: the group empties, its
	// generation moves on, and its metadata says so.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: a}, {MemberID: b}, {MemberID: "ghost"}}
	lr := h.call("g", leave).(*kmsg.LeaveGroupResponse)
	if lr.ErrorCode != 0 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != 0 || lr.Members[2].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", lr)
	}
	if d := h.describe("g"); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("after leave: %+v", d)
	}
	wait.For(t, 5*time.Second, func() error { // until empty generation stored
		md := h.store("g").metadata("g")
		if md == nil || md.Generation != 3 || len(md.Members) != 0 {
			return fmt.Errorf("metadata %+v", md)
		}
		return nil
	})
	errCode(t, "simple commit to an empty group", commit("", -1, 7), nil)

	// Delete: offsets and metadata go; the group is unknown afterwards.
	if err, _ := h.ask("g", &DeleteOp{}).(*kerr.Error); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if d := h.describe("g"); d.State != "Dead" {
		t.Fatalf("after delete: %+v", d)
	}
	if err, _ := h.ask("g", &DeleteOp{}).(*kerr.Error); err != kerr.GroupIDNotFound {
		t.Fatalf("second delete: %v", err)
	}
	if h.store("g").has("g") {
		t.Fatal("store still holds the deleted group")
	}
}

// A static member restarting (new member id, same group.instance.id and
// subscription) gets its assignment back in the same generation, and its
// old incarnation is fenced (KIP-345).
func TestClassicStaticMemberRejoin(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	inst := "instance-1"
	r1 := h.call("g", joinReq("", &inst, "range")).(*kmsg.JoinGroupResponse)
	errCode(t, "static join", r1.ErrorCode, nil)
	if r1.Generation != 1 || r1.LeaderID != r1.MemberID {
		t.Fatalf("static join: %+v", r1)
	}
	old := r1.MemberID
	if s := h.call("g", syncReq(old, 1, map[string]string{old: "x"})).(*kmsg.SyncGroupResponse); string(s.MemberAssignment) != "x" {
		t.Fatalf("sync: %+v", s)
	}
	r2 := h.call("g", joinReq("", &inst, "range")).(*kmsg.JoinGroupResponse)
	errCode(t, "static rejoin", r2.ErrorCode, nil)
	if r2.MemberID == old || r2.Generation != 1 || r2.LeaderID != r2.MemberID || !r2.SkipAssignment {
		t.Fatalf("static rejoin: %+v", r2)
	}
	s := h.call("g", syncReq(r2.MemberID, 1, nil)).(*kmsg.SyncGroupResponse)
	if s.ErrorCode != 0 || string(s.MemberAssignment) != "x" {
		t.Fatalf("sync after rejoin: %+v", s)
	}
	errCode(t, "old incarnation", h.call("g", heartbeatReq(old, 1, &inst)).(*kmsg.HeartbeatResponse).ErrorCode, kerr.FencedInstanceID)
	errCode(t, "new incarnation", h.call("g", heartbeatReq(r2.MemberID, 1, &inst)).(*kmsg.HeartbeatResponse).ErrorCode, nil)
	md := h.store("g").metadata("g")
	if md == nil || len(md.Members) != 1 || md.Members[0].MemberID != r2.MemberID || string(md.Members[0].Assignment) != "x" {
		t.Fatalf("stored metadata: %+v", md)
	}
	// Leaving by instance id alone (as admin tools do).
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 4, "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &inst}}
	if lr := h.call("g", leave).(*kmsg.LeaveGroupResponse); lr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance: %+v", lr)
	}
}

// A member that stops heartbeating is removed after its session timeout
// and the survivor rebalances alone.
func TestClassicSessionTimeout(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	ja, a := h.join("range")
	short := joinReq("", nil, "range")
	short.SessionTimeoutMillis = 300
	jb, b := h.joinWith(short)
	ra, rb := h.await(ja).(*kmsg.JoinGroupResponse), h.await(jb).(*kmsg.JoinGroupResponse)
	if ra.Generation != 1 || rb.Generation != 1 {
		t.Fatalf("both in generation 1: %+v %+v", ra, rb)
	}
	syncs := map[string]<-chan kmsg.Response{}
	for _, id := range []string{a, b} {
		var assign map[string]string
		if id == ra.LeaderID {
			assign = map[string]string{a: "pa", b: "pb"}
		}
		syncs[id] = h.send("g", syncReq(id, 1, assign))
	}
	for id, ch := range syncs {
		errCode(t, "sync "+id, h.await(ch).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	}
	// b goes silent; a heartbeats and rejoins once told to.
	gen := int32(1)
	wait.For(t, 10*time.Second, func() error { // until b expired
		code := h.call("g", heartbeatReq(a, gen, nil)).(*kmsg.HeartbeatResponse).ErrorCode
		if code == kerr.RebalanceInProgress.Code {
			r := h.call("g", joinReq(a, nil, "range")).(*kmsg.JoinGroupResponse)
			gen = r.Generation
			if len(r.Members) == 1 && r.LeaderID == a {
				return nil
			}
		}
		return fmt.Errorf("heartbeat: %v, generation %d", kerr.ErrorForCode(code), gen)
	})
	if gen != 2 {
		t.Fatalf("generation %d after b expired, want 2", gen)
	}
	errCode(t, "sync alone", h.call("g", syncReq(a, 2, map[string]string{a: "all"})).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	if d := h.describe("g"); d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != a {
		t.Fatalf("after expiry: %+v", d)
	}
}
