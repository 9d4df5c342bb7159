package groups

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// ConsumerGroupHeartbeat in the group actor: join (epoch 0), heartbeat
// (the member's epoch), leave (-1, or -2 for a static member that will
// come back), as Kafka 4's GroupMetadataManager.consumerGroupHeartbeat.

const (
	leaveEpoch       = -1
	staticLeaveEpoch = -2
)

// heartbeatError is the answer to a heartbeat that fails with err.
type heartbeatError struct {
	err *kerr.Error
	msg string
}

func hbErr(err *kerr.Error, format string, args ...any) *heartbeatError {
	return &heartbeatError{err: err, msg: fmt.Sprintf(format, args...)}
}

func (g *group) handleConsumerHeartbeat(call *Call, req *kmsg.ConsumerGroupHeartbeatRequest) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	e := validateHeartbeat(req)
	switch {
	case e != nil:
	case req.MemberEpoch < 0:
		e = g.consumerLeave(req, resp)
	default:
		e = g.consumerHeartbeat(call, req, resp)
	}
	if e != nil {
		*resp = *req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode, resp.ErrorMessage = e.err.Code, &e.msg
	}
	// What changed is written in one batch, and the heartbeat answered
	// once it is applied, as Kafka answers once its records are committed.
	g.persistConsumer(func(err error) {
		if err != nil {
			*resp = *req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			we := writeError(err)
			msg := we.Message
			resp.ErrorCode, resp.ErrorMessage = we.Code, &msg
		}
		// Published before the answer, so an OffsetFetch the member sends
		// with its new epoch is checked against it.
		g.publish()
		call.reply(resp)
	})
}

// validateHeartbeat is Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid.
func validateHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) *heartbeatError {
	inv := func(msg string) *heartbeatError { return &heartbeatError{kerr.InvalidRequest, msg} }
	switch {
	case req.InstanceID != nil && *req.InstanceID == "":
		return inv("InstanceId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return inv("RackId can't be empty.")
	case req.Version >= 1 && req.MemberID == "":
		// v1 (KIP-1082): the client makes its member id.
		return inv("MemberId can't be empty.")
	}
	switch e := req.MemberEpoch; {
	case e > 0 || e == leaveEpoch:
		if req.MemberID == "" {
			return inv("MemberId can't be empty.")
		}
	case e == 0:
		switch {
		case req.RebalanceTimeoutMillis == -1:
			return inv("RebalanceTimeoutMs must be provided in first request.")
		case req.Topics == nil || len(req.Topics) > 0:
			return inv("TopicPartitions must be empty when (re-)joining.")
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return inv("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
		}
	case e == staticLeaveEpoch:
		if req.MemberID == "" {
			return inv("MemberId can't be empty.")
		}
		if req.InstanceID == nil {
			return inv("InstanceId can't be null.")
		}
	default:
		return inv("MemberEpoch is invalid.")
	}
	if req.SubscribedTopicRegex != nil {
		if _, err := regexp.Compile(*req.SubscribedTopicRegex); err != nil {
			return hbErr(kerr.InvalidRegularExpression, "SubscribedTopicRegex `%s` is not a valid regular expression: %v.", *req.SubscribedTopicRegex, err)
		}
	}
	if a := req.ServerAssignor; a != nil && assignors[*a] == nil {
		return hbErr(kerr.UnsupportedAssignor, "ServerAssignor %s is not supported. Supported assignors: range, uniform.", *a)
	}
	return nil
}

// becomeConsumer turns the group into a consumer group for a joining
// member: only an empty classic group may be replaced (Kafka's
// maybeDeleteEmptyClassicGroup; this coordinator does not convert a
// classic group with members, as Kafka with online upgrades disabled).
func (g *group) becomeConsumer(epoch int32, memberID string) *heartbeatError {
	if epoch != 0 {
		if g.classic.busy() {
			return hbErr(kerr.GroupIDNotFound, "Group %s is not a consumer group.", g.name)
		}
		// Not a consumer group in the log either (a stored one is loaded
		// when the actor starts): the member is unknown, and rejoins.
		return hbErr(kerr.UnknownMemberID, "Member %s is not a member of group %s.", memberID, g.name)
	}
	if g.classic.busy() {
		return hbErr(kerr.GroupIDNotFound, "Cannot upgrade classic group %s to consumer group because online upgrade is disabled.", g.name)
	}
	if g.store.metadata(g.name) != nil {
		g.write([]protocol.Record{groupTombstone(g.name)}, func(err error) {
			if err != nil {
				g.co.node.Log().Warn("classic group tombstone failed", "group", g.name, "err", err)
			}
		})
	}
	g.kind = groupConsumer
	g.generation, g.protocolType, g.protocol, g.leader = 0, "consumer", "", ""
	g.consumer.init()
	g.setState(stateEmpty)
	return nil
}

// becomeClassic gives an empty consumer group back to the classic
// protocol, for a JoinGroup (Kafka converts it the same way).
func (g *group) becomeClassic() {
	g.consumer.stopTimers()
	g.consumer.init()
	g.kind = groupClassic
	g.protocolType = ""
	g.setState(stateEmpty)
	// Its records go before the classic group's first one, which the
	// JoinGroup writes after these (one actor's writes apply in order).
	if recs := g.consumerTombstones(); len(recs) > 0 {
		g.write(recs, func(err error) {
			if err != nil {
				g.co.node.Log().Warn("consumer group tombstones failed", "group", g.name, "err", err)
			}
		})
	}
}

func (g *group) consumerHeartbeat(call *Call, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *heartbeatError {
	if g.kind != groupConsumer {
		if e := g.becomeConsumer(req.MemberEpoch, req.MemberID); e != nil {
			return e
		}
	}
	cg := &g.consumer
	owned := ownedParts(req.Topics)
	m, e := g.consumerMember(req, owned)
	if e != nil {
		return e
	}
	before, bump := m.assigned, false
	if req.RebalanceTimeoutMillis != -1 {
		m.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.RackID != nil {
		m.rackID = *req.RackID
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor, bump = *req.ServerAssignor, true
	}
	if req.SubscribedTopicNames != nil {
		names := append([]string(nil), req.SubscribedTopicNames...)
		sort.Strings(names)
		if strings.Join(names, "\x00") != strings.Join(m.subscribed, "\x00") {
			m.subscribed, bump = names, true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex, bump = *req.SubscribedTopicRegex, true
	}
	m.clientID, m.clientHost = call.client.ID, call.client.Host
	if md := g.co.node.Metadata(); bump || md != cg.mdSeen {
		cg.mdSeen = md
		if bump || g.topicsChanged() {
			g.bumpConsumerEpoch()
		}
	}
	g.reconcile(m, owned)
	g.touchConsumer(m)
	g.updateConsumerState()

	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.co.cfg.ConsumerHeartbeatInterval.Milliseconds())
	full := req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if req.MemberEpoch == 0 || full || !samePartSet(before, m.assigned) {
		resp.Assignment = heartbeatAssignment(m.assigned)
	}
	return nil
}

// consumerMember finds (or, joining, creates) the heartbeat's member and
// checks its epoch: Kafka's getOrMaybeSubscribe{Dynamic,Static}ConsumerGroupMember.
func (g *group) consumerMember(req *kmsg.ConsumerGroupHeartbeatRequest, owned partSet) (*consumerMember, *heartbeatError) {
	cg := &g.consumer
	id := req.MemberID
	if id == "" {
		id = newConsumerMemberID() // v0: the coordinator names the member
	}
	if req.InstanceID != nil {
		inst := *req.InstanceID
		old := cg.members[cg.static[inst]]
		if req.MemberEpoch == 0 {
			if old == nil {
				return g.addConsumerMember(id, inst), nil
			}
			if old.epoch != staticLeaveEpoch {
				return nil, hbErr(kerr.UnreleasedInstanceID, "Static member %s with instance id %s cannot join the group because the instance id is owned by %s member.", id, inst, old.id)
			}
			return g.replaceStatic(old, id), nil
		}
		if old == nil {
			return nil, hbErr(kerr.UnknownMemberID, "Instance id %s is unknown.", inst)
		}
		if old.id != id {
			return nil, hbErr(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", id, inst, old.id)
		}
		return old, checkMemberEpoch(old, req.MemberEpoch, owned)
	}
	m := cg.members[id]
	switch {
	case m == nil && req.MemberEpoch == 0:
		return g.addConsumerMember(id, ""), nil
	case m == nil:
		return nil, hbErr(kerr.UnknownMemberID, "Member %s is not a member of group %s.", id, g.name)
	case req.MemberEpoch == 0 && m.epoch != 0 && !(m.prevEpoch == 0 && subsetOf(owned, m.assigned)):
		// A member fenced (or whose join answer was lost) rejoins with
		// epoch 0 and the same id (KIP-848), having dropped everything it
		// owned: it restarts from nothing in place. Kafka fences it again
		// until its session expires; clients then lose a session timeout.
		cg.setOwned(m, nil, nil)
		m.state = memberStable
		cg.setEpoch(m, 0)
		m.prevEpoch = 0
		return m, nil
	}
	return m, checkMemberEpoch(m, req.MemberEpoch, owned)
}

// checkMemberEpoch is throwIfConsumerGroupMemberEpochIsInvalid: the
// previous epoch is accepted from a member owning a subset of its
// partitions, as the answer that moved it on may have been lost.
func checkMemberEpoch(m *consumerMember, epoch int32, owned partSet) *heartbeatError {
	switch {
	case epoch > m.epoch:
		return hbErr(kerr.FencedMemberEpoch, "The consumer group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", epoch, m.epoch)
	case epoch < m.epoch && (epoch != m.prevEpoch || owned == nil || !subsetOf(owned, m.assigned)):
		return hbErr(kerr.FencedMemberEpoch, "The consumer group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", epoch, m.epoch)
	}
	return nil
}

func (g *group) addConsumerMember(id, instanceID string) *consumerMember {
	cg := &g.consumer
	m := &consumerMember{id: id, instanceID: instanceID}
	cg.members[id] = m
	if instanceID != "" {
		cg.static[instanceID] = id
	}
	cg.epochsDirty = true
	return m
}

// replaceStatic gives a rejoining static member the place, partitions
// and target of the member it was before, under its new id.
func (g *group) replaceStatic(old *consumerMember, id string) *consumerMember {
	cg := &g.consumer
	old.stopTimers()
	assigned := old.assigned
	cg.setOwned(old, nil, nil)
	delete(cg.members, old.id)
	m := &consumerMember{id: id, instanceID: old.instanceID, rackID: old.rackID,
		rebalanceTimeout: old.rebalanceTimeout, subscribed: old.subscribed, regex: old.regex, assignor: old.assignor}
	cg.members[id] = m
	cg.static[m.instanceID] = id
	if t, ok := cg.target[old.id]; ok {
		delete(cg.target, old.id)
		cg.target[id] = t
	}
	cg.setOwned(m, assigned, nil)
	cg.epochsDirty = true
	return m
}

// consumerLeave is consumerGroupLeave: -1 removes the member, -2 keeps a
// static member's partitions for it until its session times out.
func (g *group) consumerLeave(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *heartbeatError {
	if g.kind != groupConsumer {
		if g.known() {
			return hbErr(kerr.GroupIDNotFound, "Group %s is not a consumer group.", g.name)
		}
		return hbErr(kerr.GroupIDNotFound, "Group %s not found.", g.name)
	}
	cg := &g.consumer
	var m *consumerMember
	if req.InstanceID == nil {
		if m = cg.members[req.MemberID]; m == nil {
			return hbErr(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.name)
		}
	} else {
		inst := *req.InstanceID
		if m = cg.members[cg.static[inst]]; m == nil {
			return hbErr(kerr.UnknownMemberID, "Instance id %s is unknown.", inst)
		}
		if m.id != req.MemberID {
			return hbErr(kerr.FencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", req.MemberID, inst, m.id)
		}
	}
	resp.MemberID, resp.MemberEpoch = &m.id, req.MemberEpoch
	if req.MemberEpoch == staticLeaveEpoch {
		cg.setOwned(m, m.assigned, nil)
		cg.setEpoch(m, staticLeaveEpoch)
	} else {
		g.removeConsumerMember(m)
	}
	g.updateConsumerState()
	return nil
}

func ownedParts(topics []kmsg.ConsumerGroupHeartbeatRequestTopic) partSet {
	if topics == nil {
		return nil
	}
	s := partSet{}
	for _, t := range topics {
		for _, p := range t.Partitions {
			s[topicPart{t.TopicID, p}] = struct{}{}
		}
	}
	return s
}

// heartbeatAssignment lists s by topic id, partitions ascending.
func heartbeatAssignment(s partSet) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	for _, ta := range groupByTopic(s) {
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = ta.id, ta.partitions
		a.Topics = append(a.Topics, t)
	}
	if a.Topics == nil {
		a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	}
	return &a
}

type topicAssignment struct {
	id         [16]byte
	partitions []int32
}

func groupByTopic(s partSet) []topicAssignment {
	by := map[[16]byte][]int32{}
	for tp := range s {
		by[tp.topic] = append(by[tp.topic], tp.partition)
	}
	out := make([]topicAssignment, 0, len(by))
	for id, ps := range by {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out = append(out, topicAssignment{id, ps})
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].id[:]) < string(out[j].id[:]) })
	return out
}

// newConsumerMemberID is a random id as Kafka's Uuid.toString prints one.
func newConsumerMemberID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
