package groups

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A restarted node rebuilds the group from __consumer_offsets: same
// generation, members and assignments, and its members carry on without
// a rebalance.
func TestClassicGroupSurvivesRestart(t *testing.T) {
	disk := newOffsetsDisk()
	h := newGroupHarness(t, disk)
	h.createTopic("t", 1)
	inst := "static-1"
	r := h.call("g", joinReq("", &inst, "range")).(*kmsg.JoinGroupResponse)
	id := r.MemberID
	errCode(t, "sync", h.call("g", syncReq(id, 1, map[string]string{id: "x"})).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	errCode(t, "commit", h.call("g", commitReq(id, 1, "t", 42)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	h.close()

	h = newGroupHarness(t, disk)
	defer h.close()
	d := h.describe("g")
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != id || string(d.Members[0].MemberAssignment) != "x" ||
		d.Members[0].InstanceID == nil || *d.Members[0].InstanceID != inst {
		t.Fatalf("reloaded: %+v", d)
	}
	errCode(t, "heartbeat after restart", h.call("g", heartbeatReq(id, 1, &inst)).(*kmsg.HeartbeatResponse).ErrorCode, nil)
	if o, ok := h.store("g").offset("g", "t", 0); !ok || o.Offset != 42 {
		t.Fatalf("offset after restart: %+v %v", o, ok)
	}
}
