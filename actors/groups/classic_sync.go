package groups

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// SyncGroup, Heartbeat and LeaveGroup of the classic protocol, and the
// group metadata record written when a generation's assignment is set.

func (g *group) handleSync(call *Call, req *kmsg.SyncGroupRequest) {
	cg := &g.classic
	fail := func(err *kerr.Error) { call.reply(CallError(req, err)) }
	m := cg.members[req.MemberID]
	switch {
	case req.Group == "":
		fail(kerr.InvalidGroupID)
	case g.isStaticMemberFenced(req.InstanceID, req.MemberID):
		fail(kerr.FencedInstanceID)
	case m == nil || g.kind != groupClassic:
		fail(kerr.UnknownMemberID)
	case req.Generation != g.generation:
		fail(kerr.IllegalGeneration)
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		fail(kerr.InconsistentGroupProtocol)
	case g.state == statePreparingRebalance:
		fail(kerr.RebalanceInProgress)
	case g.state == stateStable:
		delete(cg.pendingSync, m.id)
		g.touch(m)
		call.reply(g.syncResult(req, m.assignment))
	case g.state == stateCompletingRebalance:
		delete(cg.pendingSync, m.id)
		if m.sync != nil {
			m.sync.reply(CallError(m.sync.req, kerr.RebalanceInProgress))
		}
		m.sync = &pendingReply{req: req, reply: call.reply}
		if g.leader == m.id {
			g.leaderSync(req)
		}
	default:
		fail(kerr.UnknownMemberID)
	}
}

// leaderSync makes the leader's assignment durable, then hands every
// member its part; members the leader left out get an empty one.
func (g *group) leaderSync(req *kmsg.SyncGroupRequest) {
	assign := make(map[string][]byte, len(g.classic.members))
	for _, a := range req.GroupAssignment {
		if g.classic.members[a.MemberID] != nil {
			assign[a.MemberID] = a.MemberAssignment
		}
	}
	for id := range g.classic.members {
		if assign[id] == nil {
			assign[id] = []byte{}
		}
	}
	gen := g.generation
	g.write(g.storeGroupRecords(assign), func(err error) {
		if g.state != stateCompletingRebalance || g.generation != gen {
			return // a rebalance overtook the write; it answered the waiters
		}
		if err != nil {
			g.resetAssignments(writeError(err))
			g.prepareRebalance()
			return
		}
		for id, m := range g.classic.members {
			m.assignment = assign[id]
			if m.sync != nil {
				m.sync.reply(g.syncResult(m.sync.req.(*kmsg.SyncGroupRequest), m.assignment))
				m.sync = nil
				g.touch(m)
			}
		}
		g.setState(stateStable)
	})
}

// resetAssignments clears the generation's assignments and answers
// waiting SyncGroups with err (a rebalance or failed write overtook them).
func (g *group) resetAssignments(err *kerr.Error) {
	for _, m := range g.classic.members {
		m.assignment = nil
		if m.sync != nil {
			m.sync.reply(CallError(m.sync.req, err))
			m.sync = nil
			g.touch(m)
		}
	}
}

func (g *group) syncTimerFired() {
	cg := &g.classic
	if (g.state != stateCompletingRebalance && g.state != stateStable) || len(cg.pendingSync) == 0 {
		return
	}
	for id := range cg.pendingSync {
		if m := cg.members[id]; m != nil {
			g.removeMember(m)
		}
	}
	g.prepareRebalance()
}

func (g *group) syncResult(req *kmsg.SyncGroupRequest, assignment []byte) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.MemberAssignment = assignment
	return resp
}

func (g *group) handleHeartbeat(call *Call, req *kmsg.HeartbeatRequest) {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	m := g.classic.members[req.MemberID]
	switch {
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
	case g.isStaticMemberFenced(req.InstanceID, req.MemberID):
		resp.ErrorCode = kerr.FencedInstanceID.Code
	case m == nil || g.kind != groupClassic:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		resp.ErrorCode = kerr.IllegalGeneration.Code
	case g.state == statePreparingRebalance:
		g.touch(m)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	case g.state == stateCompletingRebalance, g.state == stateStable:
		// Members may heartbeat between their JoinGroup and SyncGroup.
		g.touch(m)
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	}
	call.reply(resp)
}

// handleLeave removes members by member id (v0-v2) or by identity
// (v3+: member id and/or group.instance.id, KIP-345).
func (g *group) handleLeave(call *Call, req *kmsg.LeaveGroupRequest) {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		call.reply(resp)
		return
	}
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		if err := g.leave(lm.MemberID, lm.InstanceID); err != nil {
			rm.ErrorCode = err.Code
		}
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode, resp.Members = resp.Members[0].ErrorCode, nil
	}
	call.reply(resp)
}

func (g *group) leave(memberID string, instanceID *string) *kerr.Error {
	cg := &g.classic
	if g.kind != groupClassic {
		return kerr.UnknownMemberID
	}
	if instanceID != nil {
		id, ok := cg.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID
		case memberID != "" && id != memberID:
			return kerr.FencedInstanceID
		}
		g.removeMemberAndUpdate(cg.members[id])
		return nil
	}
	if t, ok := cg.pending[memberID]; ok {
		t.Stop()
		delete(cg.pending, memberID)
		if g.state == statePreparingRebalance {
			g.tryCompleteJoin()
		}
		return nil
	}
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	g.removeMemberAndUpdate(m)
	return nil
}

// storeGroupRecords is the group metadata record of the current
// generation with assign as its assignments (nil: the members' current
// ones), as Kafka's storeGroup writes it.
func (g *group) storeGroupRecords(assign map[string][]byte) []protocol.Record {
	v := kmsg.NewGroupMetadataValue()
	v.ProtocolType, v.Generation = g.protocolType, g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = time.Now().UnixMilli()
	for _, id := range g.classic.sortedIDs() {
		m := g.classic.members[id]
		sm := kmsg.NewGroupMetadataValueMember()
		sm.MemberID, sm.ClientID, sm.ClientHost = id, m.clientID, m.clientHost
		if m.instanceID != "" {
			inst := m.instanceID
			sm.InstanceID = &inst
		}
		sm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		sm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		sm.Subscription = m.metadataFor(g.protocol)
		sm.Assignment = m.assignment
		if assign != nil {
			sm.Assignment = assign[id]
		}
		if sm.Subscription == nil {
			sm.Subscription = []byte{}
		}
		if sm.Assignment == nil {
			sm.Assignment = []byte{}
		}
		v.Members = append(v.Members, sm)
	}
	return []protocol.Record{groupMetadataRecord(g.name, &v)}
}
