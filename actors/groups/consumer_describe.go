package groups

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

// How a consumer group shows itself: ConsumerGroupDescribe, and the
// classic APIs that reach one.

// ConsumerDescribeOp asks a group for its ConsumerGroupDescribe entry;
// reply: kmsg.ConsumerGroupDescribeResponseGroup.
type ConsumerDescribeOp struct{}

// consumerDescribe is ConsumerGroup.asDescribedGroup.
func (g *group) consumerDescribe() kmsg.ConsumerGroupDescribeResponseGroup {
	d := kmsg.NewConsumerGroupDescribeResponseGroup()
	d.Group = g.name
	if g.kind != groupConsumer {
		msg := fmt.Sprintf("Group %s not found.", g.name)
		if g.known() {
			msg = fmt.Sprintf("Group %s is not a consumer group.", g.name)
		}
		d.ErrorCode, d.ErrorMessage = kerr.GroupIDNotFound.Code, &msg
		return d
	}
	cg := &g.consumer
	md := g.co.node.Metadata()
	d.State, d.Epoch, d.AssignmentEpoch = g.state.String(), cg.epoch, cg.assignEpoch
	d.AssignorName = cg.preferredAssignor()
	for _, id := range cg.sortedIDs() {
		m := cg.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.MemberEpoch, dm.ClientID, dm.ClientHost = id, m.epoch, m.clientID, m.clientHost
		if m.instanceID != "" {
			dm.InstanceID = &m.instanceID
		}
		if m.rackID != "" {
			dm.RackID = &m.rackID
		}
		dm.SubscribedTopics = append([]string{}, m.subscribed...)
		if m.regex != "" {
			dm.SubscribedTopicRegex = &m.regex
		}
		dm.Assignment = describedAssignment(m.assigned, md)
		dm.TargetAssignment = describedAssignment(cg.target[id], md)
		dm.MemberType = 1 // a consumer-protocol member, not a classic one
		d.Members = append(d.Members, dm)
	}
	return d
}

func describedAssignment(s partSet, md *raftactor.Metadata) kmsg.Assignment {
	a := kmsg.NewAssignment()
	a.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	for _, ta := range groupByTopic(s) {
		tp := kmsg.NewAssignmentTopicPartition()
		tp.TopicID, tp.Partitions = ta.id, ta.partitions
		if t := md.TopicByID(ta.id); t != nil {
			tp.Topic = t.Name
		}
		a.TopicPartitions = append(a.TopicPartitions, tp)
	}
	return a
}

// classicCallOnConsumer answers a classic protocol request that reaches
// a consumer group, and reports whether it did. A JoinGroup to an empty
// consumer group turns it back into a classic group (as Kafka does) and
// goes on to the classic handlers; with members, the classic protocol
// cannot join (mixed groups are not served). The other classic requests
// name members the group does not know. DeleteGroups deletes the consumer
// group's own records too.
func (g *group) classicCallOnConsumer(call *Call) bool {
	if g.kind != groupConsumer {
		return false
	}
	switch op := call.op.(type) {
	case *DeleteOp:
		g.handleConsumerDelete(call)
		return true
	case *kmsg.JoinGroupRequest:
		if len(g.consumer.members) == 0 {
			g.becomeClassic()
			return false
		}
		call.reply(joinError(op, op.MemberID, kerr.InconsistentGroupProtocol))
		return true
	case *kmsg.SyncGroupRequest, *kmsg.HeartbeatRequest, *kmsg.LeaveGroupRequest:
		call.reply(CallError(call.op, kerr.UnknownMemberID))
		return true
	}
	return false
}

// subscribedTopics are the topics the group's members consume, by kind;
// nil if unknown.
func (g *group) subscribedTopics() map[string]bool {
	if g.kind == groupConsumer {
		return g.consumerSubscribed()
	}
	return g.classic.subscribed
}

// consumerEpochs is what the listing publishes for OffsetFetch: nil for a
// classic group.
//
// The actor publishes right after it loads, before any call: the stored
// consumer group is rebuilt here then, once.
func (g *group) consumerEpochs() map[string]int32 {
	if !g.consumer.loaded {
		g.loadConsumer()
	}
	if g.kind != groupConsumer {
		return nil
	}
	return g.consumer.publishedEpochs()
}
