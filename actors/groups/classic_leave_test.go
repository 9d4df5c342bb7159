package groups

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A member that leaves while its SyncGroup waits for the leader's
// assignment gets that SyncGroup answered: a request left unanswered
// blocks every later response on its connection.
func TestClassicLeaveAnswersHeldSync(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
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
