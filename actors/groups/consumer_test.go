package groups

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// consumerClient is a KIP-848 member as a client keeps it: its id and
// epoch, and the partitions it was last told it owns.
type consumerClient struct {
	id    string
	epoch int32
	owned []int32
}

func cghReq(id string, epoch int32, topic [16]byte, owned []int32) *kmsg.ConsumerGroupHeartbeatRequest {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version, r.Group, r.MemberID, r.MemberEpoch = 1, "g", id, epoch
	r.RebalanceTimeoutMillis = 10000
	r.SubscribedTopicNames = []string{"t"}
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if len(owned) > 0 {
		r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: topic, Partitions: owned})
	}
	return r
}

// beat sends c's heartbeat and applies the answer as a client does: an
// assignment replaces what it owns (revoked partitions are dropped at once).
func (h *groupHarness) beat(c *consumerClient, topic [16]byte) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	r := h.call("g", cghReq(c.id, c.epoch, topic, c.owned)).(*kmsg.ConsumerGroupHeartbeatResponse)
	if r.ErrorCode != 0 {
		h.t.Fatalf("heartbeat %s at %d: %v %s", c.id, c.epoch, kerr.ErrorForCode(r.ErrorCode), *r.ErrorMessage)
	}
	c.epoch = r.MemberEpoch
	if r.Assignment != nil {
		c.owned = nil
		for _, t := range r.Assignment.Topics {
			c.owned = append(c.owned, t.Partitions...)
		}
		sort.Slice(c.owned, func(i, j int) bool { return c.owned[i] < c.owned[j] })
	}
	return r
}

func (h *groupHarness) consumerDescribe() kmsg.ConsumerGroupDescribeResponseGroup {
	h.t.Helper()
	return h.ask("g", &ConsumerDescribeOp{}).(kmsg.ConsumerGroupDescribeResponseGroup)
}

// checkNoSharedPartition fails if two clients, or two members as the
// coordinator sees them, hold one partition.
func (h *groupHarness) checkNoSharedPartition(clients []*consumerClient) {
	h.t.Helper()
	owner := map[int32]string{}
	for _, c := range clients {
		for _, p := range c.owned {
			if o, dup := owner[p]; dup {
				h.t.Fatalf("partition %d held by clients %s and %s", p, o, c.id)
			}
			owner[p] = c.id
		}
	}
	owner = map[int32]string{}
	for _, m := range h.consumerDescribe().Members {
		for _, tp := range m.Assignment.TopicPartitions {
			for _, p := range tp.Partitions {
				if o, dup := owner[p]; dup {
					h.t.Fatalf("partition %d assigned to members %s and %s", p, o, m.MemberID)
				}
				owner[p] = m.MemberID
			}
		}
	}
}

// TestConsumerGroupReconcileNeverShares has three members join one by one
// and heartbeat in turns: at every step no partition has two owners, and
// the group ends Stable with two partitions each at the group epoch.
func TestConsumerGroupReconcileNeverShares(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	topic := h.createTopic("t", 6)
	var clients []*consumerClient
	for _, id := range []string{"a", "b", "c"} {
		c := &consumerClient{id: id}
		clients = append(clients, c)
		h.beat(c, topic)
		h.checkNoSharedPartition(clients)
		for round := 0; ; round++ {
			if round > 10 {
				t.Fatalf("not Stable after %d rounds with %d members: %+v", round, len(clients), h.consumerDescribe())
			}
			for _, c := range clients {
				h.beat(c, topic)
				h.checkNoSharedPartition(clients)
			}
			if h.consumerDescribe().State == "Stable" {
				break
			}
		}
	}
	d := h.consumerDescribe()
	for _, c := range clients {
		if len(c.owned) != 2 || c.epoch != d.Epoch {
			t.Fatalf("%s owns %v at epoch %d; group epoch %d", c.id, c.owned, c.epoch, d.Epoch)
		}
	}
	if d.Epoch != 3 || d.AssignmentEpoch != 3 || d.AssignorName != "uniform" || len(d.Members) != 3 {
		t.Fatalf("describe: %+v", d)
	}
	m := d.Members[0]
	if m.MemberType != 1 || len(m.TargetAssignment.TopicPartitions) != 1 || m.TargetAssignment.TopicPartitions[0].Topic != "t" {
		t.Fatalf("member: %+v", m)
	}
}

func TestConsumerGroupHeartbeatErrors(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	topic := h.createTopic("t", 2)
	code := func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode }

	// v1 needs a client-made member id; v0 gets one.
	errCode(t, "v1 without member id", code(h.call("g", cghReq("", 0, topic, nil))), kerr.InvalidRequest)
	v0 := cghReq("", 0, topic, nil)
	v0.Version = 0
	r0 := h.call("g", v0).(*kmsg.ConsumerGroupHeartbeatResponse)
	if r0.ErrorCode != 0 || r0.MemberID == nil || *r0.MemberID == "" || r0.MemberEpoch != 1 {
		t.Fatalf("v0 join: %+v", r0)
	}
	bad := cghReq("x", 0, topic, nil)
	bad.ServerAssignor = kmsg.StringPtr("sticky")
	errCode(t, "unknown assignor", code(h.call("g", bad)), kerr.UnsupportedAssignor)

	a := &consumerClient{id: "a"}
	h.beat(a, topic)
	h.beat(a, topic)
	errCode(t, "unknown member", code(h.call("g", cghReq("nobody", 3, topic, nil))), kerr.UnknownMemberID)
	errCode(t, "epoch ahead", code(h.call("g", cghReq("a", a.epoch+1, topic, a.owned))), kerr.FencedMemberEpoch)
	errCode(t, "epoch behind", code(h.call("g", cghReq("a", a.epoch-1, topic, a.owned))), kerr.FencedMemberEpoch)

	// Commits are checked against the member's epoch.
	commit := commitReq("a", a.epoch-1, "t", 5)
	errCode(t, "stale commit", h.call("g", commit).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.StaleMemberEpoch)
	commit = commitReq("a", a.epoch, "t", 5)
	errCode(t, "commit", h.call("g", commit).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	errCode(t, "unknown committer", h.call("g", commitReq("zz", a.epoch, "t", 5)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.UnknownMemberID)
	if err := h.co.ValidateOffsetFetch("g", &a.id, a.epoch-1); err != kerr.StaleMemberEpoch {
		t.Fatalf("stale OffsetFetch: %v", err)
	}
	if err := h.co.ValidateOffsetFetch("g", &a.id, a.epoch); err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}

	// The classic protocol cannot join, and the classic describe does not
	// describe it.
	errCode(t, "classic join", h.call("g", joinReq("", nil, "range")).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)
	if d := h.describe("g"); d.State != "Dead" || d.ErrorMessage == nil {
		t.Fatalf("DescribeGroups: %+v", d)
	}

	// Leaving bumps the group epoch.
	before := h.consumerDescribe().Epoch
	leave := cghReq("a", -1, topic, nil)
	r := h.call("g", leave).(*kmsg.ConsumerGroupHeartbeatResponse)
	if r.ErrorCode != 0 || r.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", r)
	}
	if d := h.consumerDescribe(); d.Epoch != before+1 || len(d.Members) != 1 {
		t.Fatalf("after leave: %+v", d)
	}
}

func TestConsumerGroupSessionTimeout(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	h.co.cfg.ConsumerSessionTimeout = 200 * time.Millisecond
	topic := h.createTopic("t", 2)
	a, b := &consumerClient{id: "a"}, &consumerClient{id: "b"}
	h.beat(a, topic)
	h.beat(b, topic)
	// a keeps heartbeating, b goes silent and is removed: a ends with both.
	wait.For(t, 10*time.Second, func() error { // until b's session to expire
		h.beat(a, topic)
		if d := h.consumerDescribe(); len(d.Members) != 1 || len(a.owned) != 2 {
			return fmt.Errorf("%d members, a owns %v", len(d.Members), a.owned)
		}
		return nil
	})
	errCode(t, "expired member", h.call("g", cghReq("b", b.epoch, topic, b.owned)).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode, kerr.UnknownMemberID)
}
