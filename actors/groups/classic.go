package groups

import (
	"bytes"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// classicGroup is the member state of Kafka's classic protocol
// (JoinGroup/SyncGroup/Heartbeat/LeaveGroup), as its GroupMetadata keeps it.
type classicGroup struct {
	members map[string]*classicMember
	static  map[string]string      // group.instance.id → member id (KIP-345)
	pending map[string]*time.Timer // member ids handed out with MEMBER_ID_REQUIRED (KIP-394)
	// pendingSync are the members of this generation that have not sent
	// SyncGroup; they are removed if they don't within the rebalance timeout.
	pendingSync map[string]bool
	// subscribed is the union of the members' topics when the protocol type
	// is "consumer" (OffsetDelete refuses those); nil if unknown.
	subscribed map[string]bool

	phase            int // counts join phases, so a stale phase timer is ignored
	initialJoin      bool
	newMemberAdded   bool
	initialRemaining time.Duration
	joinTimer        *time.Timer
	syncTimer        *time.Timer
}

type classicMember struct {
	id, instanceID       string // instanceID "" = dynamic member
	clientID, clientHost string
	rebalanceTimeout     time.Duration
	sessionTimeout       time.Duration
	protocolType         string
	protocols            []kmsg.JoinGroupRequestProtocol
	assignment           []byte

	join *pendingReply // JoinGroup waiting for the join phase to end
	sync *pendingReply // SyncGroup waiting for the leader's assignment

	deadline time.Time // session expiry, pushed by heartbeats
	timer    *time.Timer
}

type pendingReply struct {
	req   kmsg.Request
	reply func(any)
}

// Timer messages to the group actor.
type (
	memberExpired        struct{ id string }
	pendingMemberExpired struct{ id string }
	joinDeadline         struct{ phase int }
	syncDeadline         struct{ generation int32 }
)

func (cg *classicGroup) init() {
	cg.members = map[string]*classicMember{}
	cg.static = map[string]string{}
	cg.pending = map[string]*time.Timer{}
	cg.pendingSync = map[string]bool{}
}

// busy reports whether anything waits on the group's actor.
func (cg *classicGroup) busy() bool {
	return len(cg.members) > 0 || len(cg.pending) > 0
}

func (cg *classicGroup) stopTimers() {
	for _, m := range cg.members {
		if m.timer != nil {
			m.timer.Stop()
		}
	}
	for _, t := range cg.pending {
		t.Stop()
	}
	if cg.joinTimer != nil {
		cg.joinTimer.Stop()
	}
	if cg.syncTimer != nil {
		cg.syncTimer.Stop()
	}
}

// failWaiting answers every held JoinGroup and SyncGroup with err.
func (cg *classicGroup) failWaiting(err *kerr.Error) {
	for _, m := range cg.members {
		if m.join != nil {
			m.join.reply(CallError(m.join.req, err))
			m.join = nil
		}
		if m.sync != nil {
			m.sync.reply(CallError(m.sync.req, err))
			m.sync = nil
		}
	}
}

// sortedIDs gives member ids in a stable order, so responses and records
// don't depend on map iteration.
func (cg *classicGroup) sortedIDs() []string {
	ids := make([]string, 0, len(cg.members))
	for id := range cg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// metadataFor is the member's protocol metadata for protocol name.
func (m *classicMember) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether protocols are exactly what the member joined with.
func (m *classicMember) matches(protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(protocols) != len(m.protocols) {
		return false
	}
	for i := range protocols {
		if protocols[i].Name != m.protocols[i].Name || !bytes.Equal(protocols[i].Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// loadClassicMembers restores the members of the last stored generation,
// static ones included, as Kafka does when it loads a group: Stable, each
// on a fresh session timer, so members gone while the coordinator was away
// expire and trigger a rebalance.
func (g *group) loadClassicMembers(md *kmsg.GroupMetadataValue) {
	cg := &g.classic
	for _, sm := range md.Members {
		m := &classicMember{
			id: sm.MemberID, clientID: sm.ClientID, clientHost: sm.ClientHost,
			rebalanceTimeout: time.Duration(sm.RebalanceTimeoutMillis) * time.Millisecond,
			sessionTimeout:   time.Duration(sm.SessionTimeoutMillis) * time.Millisecond,
			protocolType:     md.ProtocolType,
			protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: sm.Subscription}},
			assignment:       sm.Assignment,
		}
		if m.rebalanceTimeout <= 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		if sm.InstanceID != nil {
			m.instanceID = *sm.InstanceID
			cg.static[m.instanceID] = m.id
		}
		cg.members[m.id] = m
		g.touch(m)
	}
	if len(cg.members) > 0 {
		g.state = stateStable
		cg.subscribed = consumerTopics(g.protocolType, g.protocol, cg.members)
	}
}

// touch restarts the member's session timeout.
func (g *group) touch(m *classicMember) {
	m.deadline = time.Now().Add(m.sessionTimeout)
	if m.timer == nil {
		m.timer = g.after(m.sessionTimeout, &memberExpired{id: m.id})
	} else {
		m.timer.Reset(m.sessionTimeout)
	}
}

// classicTimer handles the protocol's timers; stale ones are ignored.
func (g *group) classicTimer(msg any) {
	cg := &g.classic
	switch t := msg.(type) {
	case *memberExpired:
		m := cg.members[t.id]
		if m == nil {
			return
		}
		if m.join != nil || m.sync != nil {
			// A member waiting on the coordinator cannot heartbeat.
			g.touch(m)
			return
		}
		if time.Now().Before(m.deadline) {
			return // a heartbeat came after the timer fired
		}
		g.removeMemberAndUpdate(m)
	case *pendingMemberExpired:
		if _, ok := cg.pending[t.id]; ok {
			delete(cg.pending, t.id)
			if g.state == statePreparingRebalance {
				g.tryCompleteJoin()
			}
		}
	case *joinDeadline:
		if t.phase == cg.phase && g.state == statePreparingRebalance {
			g.joinTimerFired()
		}
	case *syncDeadline:
		if t.generation == g.generation {
			g.syncTimerFired()
		}
	}
}

// removeMember drops m from the group without rebalancing.
func (g *group) removeMember(m *classicMember) {
	cg := &g.classic
	if m.timer != nil {
		m.timer.Stop()
	}
	delete(cg.members, m.id)
	delete(cg.pendingSync, m.id)
	if m.instanceID != "" && cg.static[m.instanceID] == m.id {
		delete(cg.static, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		for _, id := range cg.sortedIDs() {
			g.leader = id
			break
		}
	}
}

// removeMemberAndUpdate removes a member that left or timed out and
// rebalances the rest, as Kafka's removeMemberAndUpdateGroup.
func (g *group) removeMemberAndUpdate(m *classicMember) {
	if m.join != nil {
		m.join.reply(CallError(m.join.req, kerr.UnknownMemberID))
		m.join = nil
	}
	if m.sync != nil {
		// Unanswered, it would hold every later response on its connection.
		m.sync.reply(CallError(m.sync.req, kerr.UnknownMemberID))
		m.sync = nil
	}
	g.removeMember(m)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance()
	case statePreparingRebalance:
		g.tryCompleteJoin()
	}
}
