package groups

import (
	"sort"
	"time"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

// consumerGroup is the member state of a KIP-848 consumer group, as
// Kafka 4's ConsumerGroup keeps it: the group epoch (bumped whenever
// membership, subscriptions or the subscribed topics change), the target
// assignment computed at that epoch, and per member the partitions it
// owns now. The coordinator drives each member from what it owns to its
// target, revoking before assigning, so no partition is ever owned by two
// members (consumer_reconcile.go).
//
// Every change of it is written to __consumer_offsets as Kafka 4's
// consumer group records (key versions 3..8) before the heartbeat that
// made it is answered, and a new coordinator rebuilds the group from them
// (store_consumer*.go): members carry on with their epochs.
// Committed offsets are records, as for classic groups.
type consumerGroup struct {
	members map[string]*consumerMember
	static  map[string]string // group.instance.id → member id

	epoch       int32                // group epoch
	assignEpoch int32                // epoch the target assignment was computed at
	target      map[string]partSet   // member id → target assignment
	owners      map[topicPart]string // partition → the member owning it (assigned or revoking)
	assignor    string               // assignor of the last target assignment
	topicsHash  int64                // hash of the subscribed topics' names, ids and sizes at the last epoch
	mdSeen      *raftactor.Metadata  // metadata the topics were last checked against
	// epochs is what OffsetFetch validates against, published with the
	// listing; rebuilt only when an epoch or the membership changes.
	epochs      map[string]int32
	epochsDirty bool

	// Durability (store_consumer_load.go); init leaves these alone,
	// as they describe the log, not the members.
	saved  consumerSaved // the group as the records last written say
	resync bool          // a write failed: saved is not to be trusted
	loaded bool          // loadConsumer has run
}

// memberState is Kafka's MemberState of a consumer group member.
type memberState int8

const (
	memberStable     memberState = iota // owns its target assignment (or as much as is free)
	memberUnrevoked                     // must release partitions before it moves on
	memberUnreleased                    // waits for partitions others still own
)

type consumerMember struct {
	id, instanceID, rackID string
	clientID, clientHost   string
	epoch, prevEpoch       int32
	state                  memberState
	rebalanceTimeout       time.Duration
	subscribed             []string // sorted topic names
	regex                  string   // SubscribedTopicRegex, "" for none
	assignor               string   // ServerAssignor, "" for the group's choice

	assigned partSet // partitions it may use
	revoking partSet // partitions it must release (still owned meanwhile)

	deadline    time.Time // session expiry, pushed by heartbeats
	timer       *time.Timer
	revokeTimer *time.Timer // rebalance timeout while revoking
}

// topicPart is one partition, named by topic id as KIP-848 does.
type topicPart struct {
	topic     [16]byte
	partition int32
}

// partSet is a set of partitions.
type partSet map[topicPart]struct{}

// Timer messages of consumer groups.
type (
	consumerSessionExpired struct{ id string }
	consumerRevokeExpired  struct {
		id    string
		epoch int32
	}
)

func (cg *consumerGroup) init() {
	cg.members = map[string]*consumerMember{}
	cg.static = map[string]string{}
	cg.target = map[string]partSet{}
	cg.owners = map[topicPart]string{}
	cg.epochs = map[string]int32{}
}

func (cg *consumerGroup) stopTimers() {
	for _, m := range cg.members {
		m.stopTimers()
	}
}

func (m *consumerMember) stopTimers() {
	if m.timer != nil {
		m.timer.Stop()
	}
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
	}
}

func (cg *consumerGroup) sortedIDs() []string {
	ids := make([]string, 0, len(cg.members))
	for id := range cg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// reconciledTo is Kafka's isReconciledTo: nothing left to do at epoch.
func (m *consumerMember) reconciledTo(epoch int32) bool {
	return m.state == memberStable && m.epoch == epoch
}

// updateConsumerState is ConsumerGroup.maybeUpdateGroupState.
func (g *group) updateConsumerState() {
	cg := &g.consumer
	s := stateStable
	switch {
	case len(cg.members) == 0:
		s = stateEmpty
	case cg.epoch > cg.assignEpoch:
		s = stateAssigning
	default:
		for _, m := range cg.members {
			if !m.reconciledTo(cg.assignEpoch) {
				s = stateReconciling
				break
			}
		}
	}
	if s != g.state {
		g.setState(s)
	}
}

// setOwned replaces what m owns (assigned and revoking), keeping the
// partition owners in step: a partition is free only once no member
// holds it in either set.
func (cg *consumerGroup) setOwned(m *consumerMember, assigned, revoking partSet) {
	for tp := range m.assigned {
		if cg.owners[tp] == m.id {
			delete(cg.owners, tp)
		}
	}
	for tp := range m.revoking {
		if cg.owners[tp] == m.id {
			delete(cg.owners, tp)
		}
	}
	m.assigned, m.revoking = assigned, revoking
	for tp := range assigned {
		cg.owners[tp] = m.id
	}
	for tp := range revoking {
		cg.owners[tp] = m.id
	}
}

// setEpoch moves m to epoch, remembering the one before (a heartbeat
// with the previous epoch is accepted: its response may have been lost).
func (cg *consumerGroup) setEpoch(m *consumerMember, epoch int32) {
	if m.epoch != epoch {
		m.prevEpoch, m.epoch = m.epoch, epoch
		cg.epochsDirty = true
	}
}

// publishedEpochs is the member → epoch map OffsetFetch checks, shared
// read-only once published.
func (cg *consumerGroup) publishedEpochs() map[string]int32 {
	if cg.epochsDirty {
		cg.epochs = make(map[string]int32, len(cg.members))
		for id, m := range cg.members {
			cg.epochs[id] = m.epoch
		}
		cg.epochsDirty = false
	}
	return cg.epochs
}

// consumerSubscribed is the union of the members' topics, resolved
// against the current metadata (regular expressions included).
func (g *group) consumerSubscribed() map[string]bool {
	out := map[string]bool{}
	md := g.co.node.Metadata()
	for _, m := range g.consumer.members {
		for _, t := range memberTopics(m, md) {
			out[t] = true
		}
	}
	return out
}

// removeConsumerMember drops m, frees its partitions and bumps the group
// epoch, as Kafka's consumerGroupFenceMember does.
func (g *group) removeConsumerMember(m *consumerMember) {
	cg := &g.consumer
	m.stopTimers()
	cg.setOwned(m, nil, nil)
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != "" && cg.static[m.instanceID] == m.id {
		delete(cg.static, m.instanceID)
	}
	cg.epochsDirty = true
	g.bumpConsumerEpoch()
}

// consumerTimer handles the consumer group's timers; stale ones are
// ignored.
func (g *group) consumerTimer(msg any) bool {
	cg := &g.consumer
	switch t := msg.(type) {
	case *consumerSessionExpired:
		m := cg.members[t.id]
		if m == nil || time.Now().Before(m.deadline) {
			return true
		}
		g.co.node.Log().Info("consumer group member session expired", "group", g.name, "member", m.id)
		g.removeConsumerMember(m)
		g.updateConsumerState()
		g.persistConsumerAsync("session timeout")
		return true
	case *consumerRevokeExpired:
		m := cg.members[t.id]
		if m == nil || m.state != memberUnrevoked || m.epoch != t.epoch {
			return true
		}
		g.co.node.Log().Info("consumer group member did not revoke in time", "group", g.name, "member", m.id)
		g.removeConsumerMember(m)
		g.updateConsumerState()
		g.persistConsumerAsync("revocation timeout")
		return true
	}
	return false
}

// touchConsumer restarts m's session timeout.
func (g *group) touchConsumer(m *consumerMember) {
	d := g.co.cfg.ConsumerSessionTimeout
	m.deadline = time.Now().Add(d)
	if m.timer == nil {
		m.timer = g.after(d, &consumerSessionExpired{id: m.id})
	} else {
		m.timer.Reset(d)
	}
}
