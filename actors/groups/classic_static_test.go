package groups

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A JoinGroup with an empty (non-null) group.instance.id is a dynamic
// member: it left the group without a stale static entry behind, so a
// second such join must not crash the group actor (it did: a nil member
// dereference in staticJoin, leaving the join unanswered).
func TestClassicEmptyInstanceIDIsDynamic(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
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
