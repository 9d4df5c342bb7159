package groups

import (
	"bytes"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// A consumer group's durable state in the group actor: the records that
// bring __consumer_offsets to the group's state, and the group rebuilt
// from them when its actor starts.
//
// The actor keeps the encoded values it last wrote (consumerSaved). After
// every change (a heartbeat, a session or revocation timeout) it encodes
// the group again and writes, in one batch, the records whose values
// differ and tombstones for what is gone. Writes from one actor are
// applied in order, so the log always ends at the last state written.

// consumerSaved is a consumer group as records: encoded values, nil for
// none.
type consumerSaved struct {
	meta              []byte // ConsumerGroupMetadataValue
	target            []byte // ConsumerGroupTargetAssignmentMetadataValue
	partitionMetadata bool   // a Kafka 4.0 ConsumerGroupPartitionMetadata record is held
	members           map[string]*savedMember
}

type savedMember struct {
	meta    []byte // ConsumerGroupMemberMetadataValue
	target  []byte // ConsumerGroupTargetAssignmentMemberValue
	current []byte // ConsumerGroupCurrentMemberAssignmentValue
}

// unknownValue stands for a record whose value is not known (after a
// failed write): no encoding equals it, so the record is written again.
var unknownValue = []byte{0xff}

// consumerImage is the group's state as records. A group that never had
// a member (epoch 0) has none.
func (g *group) consumerImage() consumerSaved {
	cg := &g.consumer
	img := consumerSaved{members: map[string]*savedMember{}}
	if g.kind != groupConsumer || (cg.epoch == 0 && len(cg.members) == 0) {
		return img
	}
	img.meta = (&cgMetadataValue{Epoch: cg.epoch, MetadataHash: cg.topicsHash}).encode()
	if cg.assignEpoch > 0 {
		img.target = (&cgTargetMetadataValue{AssignmentEpoch: cg.assignEpoch}).encode()
	}
	for id, m := range cg.members {
		sm := &savedMember{meta: memberValue(m).encode(), current: currentValue(m).encode()}
		if t, ok := cg.target[id]; ok {
			sm.target = (&cgTargetMemberValue{TopicPartitions: topicPartitionsOf(t)}).encode()
		}
		img.members[id] = sm
	}
	return img
}

func memberValue(m *consumerMember) *cgMemberValue {
	v := &cgMemberValue{
		ClientID: m.clientID, ClientHost: m.clientHost,
		SubscribedTopicNames: m.subscribed,
		RebalanceTimeoutMs:   int32(m.rebalanceTimeout.Milliseconds()),
	}
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	v.InstanceID, v.RackID, v.SubscribedTopicRegex, v.ServerAssignor = str(m.instanceID), str(m.rackID), str(m.regex), str(m.assignor)
	return v
}

func currentValue(m *consumerMember) *cgCurrentValue {
	return &cgCurrentValue{
		MemberEpoch: m.epoch, PreviousMemberEpoch: m.prevEpoch, State: int8(m.state),
		AssignedPartitions:          topicPartitionsOf(m.assigned),
		PartitionsPendingRevocation: topicPartitionsOf(m.revoking),
	}
}

// consumerDiff is the records that take the log from old to cur, in the
// order Kafka's coordinator writes them: tombstones of members gone
// (current assignment, target, metadata), member metadata, group epoch,
// targets, assignment epoch, current assignments; the group's own
// tombstones last.
func consumerDiff(group string, old, cur *consumerSaved) []protocol.Record {
	var recs []protocol.Record
	key := func(typ int16, member string) consumerKey { return consumerKey{typ: typ, group: group, member: member} }
	// put writes cur's value where it differs from old's, or a tombstone
	// where cur has none and old had one.
	put := func(k consumerKey, o, c []byte) {
		switch {
		case c == nil && o != nil:
			recs = append(recs, consumerRecord(k, nil))
		case c != nil && (o == nil || !bytes.Equal(o, c)):
			recs = append(recs, consumerRecord(k, c))
		}
	}
	none := &savedMember{}
	oldIDs := sortedKeys(old.members)
	for _, id := range oldIDs {
		if o := old.members[id]; cur.members[id] == nil {
			put(key(recConsumerGroupCurrentMemberAssignment, id), o.current, nil)
			put(key(recConsumerGroupTargetAssignmentMember, id), o.target, nil)
			put(key(recConsumerGroupMemberMetadata, id), o.meta, nil)
		}
	}
	ids := sortedKeys(cur.members)
	member := func(id string) (o, c *savedMember) {
		if o = old.members[id]; o == nil {
			o = none
		}
		return o, cur.members[id]
	}
	for _, id := range ids {
		o, c := member(id)
		put(key(recConsumerGroupMemberMetadata, id), o.meta, c.meta)
	}
	if cur.meta != nil {
		put(key(recConsumerGroupMetadata, ""), old.meta, cur.meta)
	}
	for _, id := range ids {
		o, c := member(id)
		put(key(recConsumerGroupTargetAssignmentMember, id), o.target, c.target)
	}
	put(key(recConsumerGroupTargetAssignmentMetadata, ""), old.target, cur.target)
	for _, id := range ids {
		o, c := member(id)
		put(key(recConsumerGroupCurrentMemberAssignment, id), o.current, c.current)
	}
	if old.partitionMetadata && !cur.partitionMetadata {
		recs = append(recs, consumerRecord(key(recConsumerGroupPartitionMetadata, ""), nil))
	}
	if cur.meta == nil {
		put(key(recConsumerGroupMetadata, ""), old.meta, nil)
	}
	return recs
}

func sortedKeys(m map[string]*savedMember) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// consumerRecords are the records that bring the log to the group's
// present state; they count as written from here on.
func (g *group) consumerRecords() []protocol.Record {
	cg := &g.consumer
	old := &cg.saved
	if cg.resync {
		old = g.consumerResyncBase()
		cg.resync = false
	}
	cur := g.consumerImage()
	recs := consumerDiff(g.name, old, &cur)
	cg.saved = cur
	return recs
}

// consumerResyncBase is what the log may hold after a failed write: any
// record this actor wrote or the store holds, with unknown values, so
// that everything is written again and the rest tombstoned.
func (g *group) consumerResyncBase() *consumerSaved {
	cg := &g.consumer
	base := &consumerSaved{members: map[string]*savedMember{}}
	unknown := func(present bool) []byte {
		if present {
			return unknownValue
		}
		return nil
	}
	for id, m := range cg.saved.members {
		base.members[id] = &savedMember{meta: unknown(m.meta != nil), target: unknown(m.target != nil), current: unknown(m.current != nil)}
	}
	base.meta, base.target = unknown(cg.saved.meta != nil), unknown(cg.saved.target != nil)
	base.partitionMetadata = cg.saved.partitionMetadata
	if st := g.store.consumerGroup(g.name); st != nil {
		base.meta = unknown(base.meta != nil || st.meta != nil)
		base.target = unknown(base.target != nil || st.target != nil)
		base.partitionMetadata = base.partitionMetadata || st.partitionMetadata
		for id, m := range st.members {
			b := base.members[id]
			if b == nil {
				b = &savedMember{}
				base.members[id] = b
			}
			b.meta = unknown(b.meta != nil || m.meta != nil)
			b.target = unknown(b.target != nil || m.target != nil)
			b.current = unknown(b.current != nil || m.current != nil)
		}
	}
	return base
}

// persistConsumer writes the records of what changed in the group, then
// runs then on the actor once they are applied (at once when nothing
// changed). After a failed write the next one rewrites the whole group.
func (g *group) persistConsumer(then func(error)) {
	recs := g.consumerRecords()
	if len(recs) == 0 {
		then(nil)
		return
	}
	g.write(recs, func(err error) {
		if err != nil {
			g.consumer.resync = true
		}
		then(err)
	})
}

// persistConsumerAsync persists a change nobody waits on (a member timed
// out, the group given back to the classic protocol).
func (g *group) persistConsumerAsync(what string) {
	g.persistConsumer(func(err error) {
		if err != nil {
			g.co.node.Log().Warn("consumer group write failed", "group", g.name, "after", what, "err", err)
		}
	})
}

// consumerTombstones are the records that delete the consumer group from
// the log; they count as written from here on.
func (g *group) consumerTombstones() []protocol.Record {
	cg := &g.consumer
	old := &cg.saved
	if cg.resync {
		old = g.consumerResyncBase()
		cg.resync = false
	}
	recs := consumerDiff(g.name, old, &consumerSaved{})
	cg.saved = consumerSaved{members: map[string]*savedMember{}}
	return recs
}

// loadConsumer rebuilds the consumer group from the log when the actor
// starts, as Kafka does when it loads a group: members keep their epochs,
// targets and assignments, each on a fresh session timer (and revocation
// timer if it was revoking), so members gone while the coordinator was
// away expire. A stored classic group with members wins (the log should
// never hold both: each conversion tombstones the other).
func (g *group) loadConsumer() {
	cg := &g.consumer
	cg.loaded = true
	cg.saved = consumerSaved{members: map[string]*savedMember{}}
	st := g.store.consumerGroup(g.name)
	if st == nil {
		return
	}
	if g.classic.busy() {
		g.co.node.Log().Warn("group has both classic and consumer group records; loading it as classic", "group", g.name)
		cg.saved = *savedOf(st)
		return
	}
	g.kind = groupConsumer
	g.generation, g.protocolType, g.protocol, g.leader = 0, "consumer", "", ""
	if st.meta != nil {
		cg.epoch, cg.topicsHash = st.meta.Epoch, st.meta.MetadataHash
	}
	if st.target != nil {
		cg.assignEpoch = st.target.AssignmentEpoch
	}
	for _, id := range st.sortedMemberIDs() {
		sm := st.members[id]
		if sm.meta == nil {
			// Kafka creates members from their metadata record; a
			// target or an assignment alone is tombstoned on the next
			// write.
			continue
		}
		m := &consumerMember{
			id: id, clientID: sm.meta.ClientID, clientHost: sm.meta.ClientHost,
			rebalanceTimeout: time.Duration(sm.meta.RebalanceTimeoutMs) * time.Millisecond,
			subscribed:       append([]string(nil), sm.meta.SubscribedTopicNames...),
		}
		sort.Strings(m.subscribed)
		deref := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		m.instanceID, m.rackID = deref(sm.meta.InstanceID), deref(sm.meta.RackID)
		m.regex, m.assignor = deref(sm.meta.SubscribedTopicRegex), deref(sm.meta.ServerAssignor)
		cg.members[id] = m
		if m.instanceID != "" {
			cg.static[m.instanceID] = id
		}
		if sm.target != nil {
			cg.target[id] = partSetOf(sm.target.TopicPartitions)
		}
		var assigned, revoking partSet
		if c := sm.current; c != nil {
			m.epoch, m.prevEpoch, m.state = c.MemberEpoch, c.PreviousMemberEpoch, memberState(c.State)
			assigned, revoking = partSetOf(c.AssignedPartitions), partSetOf(c.PartitionsPendingRevocation)
			if len(revoking) == 0 {
				revoking = nil
			}
		}
		cg.setOwned(m, assigned, revoking)
		g.touchConsumer(m)
		if m.state == memberUnrevoked {
			g.startRevokeTimer(m)
		}
	}
	cg.assignor = cg.preferredAssignor()
	cg.epochsDirty = true
	cg.saved = *savedOf(st)
	g.updateConsumerState()
}

// savedOf is the stored group as records, for diffing.
func savedOf(st *storedConsumerGroup) *consumerSaved {
	s := &consumerSaved{members: map[string]*savedMember{}, partitionMetadata: st.partitionMetadata}
	if st.meta != nil {
		s.meta = st.meta.encode()
	}
	if st.target != nil {
		s.target = st.target.encode()
	}
	for id, m := range st.members {
		sm := &savedMember{}
		if m.meta != nil {
			sm.meta = m.meta.encode()
		}
		if m.target != nil {
			sm.target = m.target.encode()
		}
		if m.current != nil {
			sm.current = m.current.encode()
		}
		s.members[id] = sm
	}
	return s
}

// handleConsumerDelete is DeleteGroups for a consumer group: only an
// empty one, with its offsets and every record of it.
func (g *group) handleConsumerDelete(call *Call) {
	switch {
	case !g.known():
		call.reply(kerr.GroupIDNotFound)
		return
	case len(g.consumer.members) > 0:
		call.reply(kerr.NonEmptyGroup)
		return
	}
	recs := append(g.store.allOffsetTombstones(g.name), g.consumerTombstones()...)
	if g.store.metadata(g.name) != nil {
		recs = append(recs, groupTombstone(g.name))
	}
	if len(recs) == 0 {
		call.reply(kerr.GroupIDNotFound)
		return
	}
	g.die(recs, func(err error) {
		if err != nil {
			call.reply(writeError(err))
			return
		}
		call.reply((*kerr.Error)(nil))
	})
}
