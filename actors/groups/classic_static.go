package groups

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Static membership (KIP-345): a member with a group.instance.id keeps its
// place across restarts. It rejoins without a member id, gets a new one,
// and, while the group is stable and its subscription unchanged, its old
// assignment back without a rebalance; the old incarnation is fenced.

// staticJoin: a member with a group.instance.id and no member id, new or
// restarted (KIP-345).
func (g *group) staticJoin(call *Call, req *kmsg.JoinGroupRequest, newID string, session, rebalance time.Duration) {
	cg := &g.classic
	oldID, ok := cg.static[*req.InstanceID]
	if !ok {
		g.addMemberAndRebalance(call, req, newID, session, rebalance)
		return
	}
	m := cg.members[oldID]
	old := *m
	g.replaceStaticMember(m, newID)
	g.updateMember(m, call, req, session, rebalance)
	switch g.state {
	case stateStable:
		if sel := g.selectProtocol(); sel != g.protocol {
			g.prepareRebalance()
			return
		}
		// A restarted static member with an unchanged subscription gets
		// its old assignment back without a rebalance; the new member id
		// is made durable first.
		g.write(g.storeGroupRecords(nil), func(err error) {
			if err != nil {
				if m.join != nil {
					m.join.reply(joinError(req, "", writeError(err)))
					m.join = nil
				}
				if cg.members[newID] == m {
					g.replaceStaticMember(m, oldID)
					m.protocols, m.rebalanceTimeout, m.sessionTimeout = old.protocols, old.rebalanceTimeout, old.sessionTimeout
				}
				return
			}
			if m.join != nil && cg.members[m.id] == m {
				leader := g.leader == m.id
				m.join.reply(g.joinResult(req, m.id, leader, leader))
				m.join = nil
			}
		})
	case stateCompletingRebalance:
		// The leader may already be assigning to the old member id.
		g.prepareRebalance()
	case statePreparingRebalance:
		g.tryCompleteJoin() // it waits, under its new id, with the others
	}
}

// replaceStaticMember moves m to a new member id, fencing whatever the
// old incarnation still waits on.
func (g *group) replaceStaticMember(m *classicMember, newID string) {
	cg := &g.classic
	if m.join != nil {
		m.join.reply(joinError(m.join.req.(*kmsg.JoinGroupRequest), m.id, kerr.FencedInstanceID))
		m.join = nil
	}
	if m.sync != nil {
		m.sync.reply(CallError(m.sync.req, kerr.FencedInstanceID))
		m.sync = nil
	}
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	delete(cg.members, m.id)
	if cg.pendingSync[m.id] {
		delete(cg.pendingSync, m.id)
		cg.pendingSync[newID] = true
	}
	if g.leader == m.id {
		g.leader = newID
	}
	m.id = newID
	cg.members[newID] = m
	cg.static[m.instanceID] = newID
	g.touch(m)
}

// isStaticMemberFenced: the instance id is registered under another member id.
func (g *group) isStaticMemberFenced(instanceID *string, memberID string) bool {
	if instanceID == nil {
		return false
	}
	id, ok := g.classic.static[*instanceID]
	return ok && id != memberID
}
