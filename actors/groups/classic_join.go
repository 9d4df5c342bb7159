package groups

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The join phase of the classic protocol, as Kafka's GroupCoordinator runs
// it: members join, the group waits for every known member (or the
// rebalance timeout), picks a protocol all support, bumps the generation
// and answers every held JoinGroup, the member list going to the leader.

func (g *group) handleJoin(call *Call, req *kmsg.JoinGroupRequest) {
	fail := func(err *kerr.Error) { call.reply(joinError(req, req.MemberID, err)) }
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || rebalance <= 0 {
		rebalance = session // v0 has no rebalance timeout: Kafka uses the session's
	}
	if req.InstanceID != nil && *req.InstanceID == "" {
		// An empty group.instance.id is no static identity (Java clients
		// refuse it); members with instanceID "" are dynamic throughout.
		req.InstanceID = nil
	}
	cg := &g.classic
	switch {
	case req.Group == "":
		fail(kerr.InvalidGroupID)
	case session < g.co.cfg.MinSessionTimeout || session > g.co.cfg.MaxSessionTimeout:
		fail(kerr.InvalidSessionTimeout)
	case g.kind != groupClassic:
		fail(kerr.InconsistentGroupProtocol)
	case !g.supportsProtocols(req.ProtocolType, req.Protocols):
		fail(kerr.InconsistentGroupProtocol)
	case req.MemberID == "":
		id := newMemberID(call.client.ID)
		switch {
		case req.InstanceID != nil:
			g.staticJoin(call, req, id, session, rebalance)
		case req.Version >= 4:
			// KIP-394: hand out the id first, so a client that times out
			// and retries does not leave a ghost member behind.
			cg.pending[id] = g.after(session, &pendingMemberExpired{id: id})
			call.reply(joinError(req, id, kerr.MemberIDRequired))
		default:
			g.addMemberAndRebalance(call, req, id, session, rebalance)
		}
	default:
		g.currentMemberJoin(call, req, session, rebalance)
	}
}

func (g *group) currentMemberJoin(call *Call, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) {
	cg := &g.classic
	if t, ok := cg.pending[req.MemberID]; ok && req.InstanceID == nil {
		t.Stop()
		delete(cg.pending, req.MemberID)
		g.addMemberAndRebalance(call, req, req.MemberID, session, rebalance)
		return
	}
	if g.isStaticMemberFenced(req.InstanceID, req.MemberID) {
		call.reply(joinError(req, req.MemberID, kerr.FencedInstanceID))
		return
	}
	m := cg.members[req.MemberID]
	if m == nil || (req.InstanceID != nil && cg.static[*req.InstanceID] == "") {
		call.reply(joinError(req, req.MemberID, kerr.UnknownMemberID))
		return
	}
	switch g.state {
	case statePreparingRebalance:
		g.updateMemberAndRebalance(call, req, m, session, rebalance)
	case stateCompletingRebalance:
		if m.matches(req.Protocols) {
			// A retried join: the answer of the generation it missed.
			call.reply(g.joinResult(req, m.id, g.leader == m.id, false))
			return
		}
		g.updateMemberAndRebalance(call, req, m, session, rebalance)
	case stateStable:
		if g.leader == m.id || !m.matches(req.Protocols) {
			// The leader rejoins to reassign (metadata may have changed).
			g.updateMemberAndRebalance(call, req, m, session, rebalance)
			return
		}
		call.reply(g.joinResult(req, m.id, false, false))
	default:
		call.reply(joinError(req, req.MemberID, kerr.UnknownMemberID))
	}
}

func (g *group) addMemberAndRebalance(call *Call, req *kmsg.JoinGroupRequest, id string, session, rebalance time.Duration) {
	cg := &g.classic
	m := &classicMember{id: id, clientID: call.client.ID, clientHost: call.client.Host, protocolType: req.ProtocolType}
	if req.InstanceID != nil {
		m.instanceID = *req.InstanceID
		cg.static[m.instanceID] = id
	}
	if len(cg.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	if g.leader == "" {
		g.leader = id
	}
	cg.members[id] = m
	if g.state == statePreparingRebalance && cg.initialJoin {
		cg.newMemberAdded = true
	}
	g.updateMember(m, call, req, session, rebalance)
	g.touch(m)
	g.maybePrepareRebalance()
}

func (g *group) updateMemberAndRebalance(call *Call, req *kmsg.JoinGroupRequest, m *classicMember, session, rebalance time.Duration) {
	g.updateMember(m, call, req, session, rebalance)
	g.maybePrepareRebalance()
}

// updateMember records a join: m now waits for the join phase to end.
func (g *group) updateMember(m *classicMember, call *Call, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) {
	if m.join != nil {
		// Superseded by this join (the client gave up on the first).
		m.join.reply(joinError(m.join.req.(*kmsg.JoinGroupRequest), m.id, kerr.RebalanceInProgress))
	}
	m.protocols = req.Protocols
	m.sessionTimeout, m.rebalanceTimeout = session, rebalance
	m.clientID, m.clientHost = call.client.ID, call.client.Host
	m.join = &pendingReply{req: req, reply: call.reply}
}

func (g *group) maybePrepareRebalance() {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		g.prepareRebalance()
	case statePreparingRebalance:
		g.tryCompleteJoin()
	}
}

func (g *group) prepareRebalance() {
	cg := &g.classic
	if g.state == stateCompletingRebalance {
		g.resetAssignments(kerr.RebalanceInProgress)
	}
	if cg.syncTimer != nil {
		cg.syncTimer.Stop()
	}
	cg.pendingSync = map[string]bool{}
	cg.phase++
	if cg.joinTimer != nil {
		cg.joinTimer.Stop()
	}
	if g.state == stateEmpty {
		// Like group.initial.rebalance.delay.ms: a new group waits a moment
		// for the rest of its starting members, extended while they come.
		cg.initialJoin, cg.newMemberAdded = true, false
		cg.initialRemaining = max(g.rebalanceTimeout()-g.co.cfg.InitialRebalanceDelay, 0)
		cg.joinTimer = g.after(g.co.cfg.InitialRebalanceDelay, &joinDeadline{phase: cg.phase})
		g.setState(statePreparingRebalance)
		return
	}
	cg.initialJoin = false
	cg.joinTimer = g.after(g.rebalanceTimeout(), &joinDeadline{phase: cg.phase})
	g.setState(statePreparingRebalance)
	g.tryCompleteJoin()
}

func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.classic.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// tryCompleteJoin ends the join phase once every known member has joined.
func (g *group) tryCompleteJoin() {
	cg := &g.classic
	if g.state != statePreparingRebalance || cg.initialJoin || len(cg.pending) > 0 {
		return
	}
	for _, m := range cg.members {
		if m.join == nil {
			return
		}
	}
	g.completeJoin()
}

func (g *group) joinTimerFired() {
	cg := &g.classic
	if cg.initialJoin && cg.newMemberAdded && cg.initialRemaining > 0 {
		cg.newMemberAdded = false
		d := min(g.co.cfg.InitialRebalanceDelay, cg.initialRemaining)
		cg.initialRemaining -= d
		cg.joinTimer = g.after(d, &joinDeadline{phase: cg.phase})
		return
	}
	cg.initialJoin = false
	g.completeJoin()
}

// completeJoin starts the next generation with the members that joined.
func (g *group) completeJoin() {
	cg := &g.classic
	for _, id := range cg.sortedIDs() {
		// Dynamic members that did not rejoin are gone; static ones stay
		// until their session expires.
		if m := cg.members[id]; m.join == nil && m.instanceID == "" {
			g.removeMember(m)
		}
	}
	if !g.electJoinedLeader() && len(cg.members) > 0 {
		// Only static members that have not rejoined remain: wait again.
		cg.joinTimer = g.after(g.rebalanceTimeout(), &joinDeadline{phase: cg.phase})
		return
	}
	g.generation++
	if len(cg.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(stateEmpty)
		g.write(g.storeGroupRecords(nil), func(err error) {
			if err != nil {
				g.co.node.Log().Warn("group metadata write failed", "group", g.name, "err", err)
			}
		})
		return
	}
	g.protocol = g.selectProtocol()
	cg.subscribed = consumerTopics(g.protocolType, g.protocol, cg.members)
	g.setState(stateCompletingRebalance)
	for _, id := range cg.sortedIDs() {
		m := cg.members[id]
		cg.pendingSync[id] = true
		if m.join != nil {
			m.join.reply(g.joinResult(m.join.req.(*kmsg.JoinGroupRequest), id, id == g.leader, false))
			m.join = nil
			g.touch(m)
		}
	}
	cg.syncTimer = g.after(g.rebalanceTimeout(), &syncDeadline{generation: g.generation})
}

// electJoinedLeader keeps the leader if it joined, else picks a member
// that did; false if none did.
func (g *group) electJoinedLeader() bool {
	cg := &g.classic
	if m := cg.members[g.leader]; m != nil && m.join != nil {
		return true
	}
	for _, id := range cg.sortedIDs() {
		if cg.members[id].join != nil {
			g.leader = id
			return true
		}
	}
	return false
}
