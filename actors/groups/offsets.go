package groups

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// Offsets and the group's life, shared by every group kind: OffsetCommit,
// OffsetDelete, DeleteGroups and DescribeGroups as the group actor answers
// them. OffsetFetch reads the store directly (api_09_offsetfetch.go).

// maxOffsetMetadata is Kafka's offset.metadata.max.bytes default.
const maxOffsetMetadata = 4096

// hasPartition reports whether topic t (nil: unknown) has partition p:
// offsets are only kept for partitions that exist.
func hasPartition(t *raftactor.Topic, p int32) bool {
	return t != nil && p >= 0 && int(p) < len(t.Groups)
}

// commitMetadata is a committed offset's metadata, "" for none.
func commitMetadata(m *string) string {
	if m == nil {
		return ""
	}
	return *m
}

func (g *group) handleOffsetCommit(call *Call, req *kmsg.OffsetCommitRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	var groupErr *kerr.Error
	m := g.classic.members[req.MemberID]
	switch {
	case g.kind == groupConsumer:
		groupErr = g.consumerCommitError(req)
	case g.isStaticMemberFenced(req.InstanceID, req.MemberID):
		groupErr = kerr.FencedInstanceID
	case req.Generation < 0 && g.state == stateEmpty:
		// A simple consumer: Kafka only stores its offsets.
	case !g.known():
		groupErr = kerr.IllegalGeneration // a commit of a generation that no longer exists
	case m == nil:
		groupErr = kerr.UnknownMemberID
	case req.Generation != g.generation:
		groupErr = kerr.IllegalGeneration
	case g.state == stateCompletingRebalance:
		groupErr = kerr.RebalanceInProgress
	default:
		// Committing during PreparingRebalance is allowed: the member
		// learns of the rebalance from its next heartbeat.
		g.touch(m)
	}
	md := g.co.node.Metadata()
	now := time.Now().UnixMilli()
	var recs []protocol.Record
	var written []*kmsg.OffsetCommitResponseTopicPartition
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		t := md.Topics[rt.Topic]
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			meta := commitMetadata(rp.Metadata)
			switch {
			case groupErr != nil:
				sp.ErrorCode = groupErr.Code
			case !hasPartition(t, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case len(meta) > maxOffsetMetadata:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				ts := now
				if req.Version == 1 && rp.Timestamp >= 0 {
					ts = rp.Timestamp
				}
				recs = append(recs, offsetCommitRecord(g.name, rt.Topic, rp.Partition,
					Offset{Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch, Metadata: meta, CommitTimestamp: ts}))
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	// Pointers once the slices are complete: the write's answer fills in errors.
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if sp := &resp.Topics[i].Partitions[j]; sp.ErrorCode == 0 {
				written = append(written, sp)
			}
		}
	}
	if len(recs) == 0 {
		call.reply(resp)
		return
	}
	g.write(recs, func(err error) {
		if err != nil {
			code := writeError(err).Code
			for _, sp := range written {
				sp.ErrorCode = code
			}
		}
		call.reply(resp)
	})
}

func (g *group) handleOffsetDelete(call *Call, req *kmsg.OffsetDeleteRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	switch {
	case !g.known():
		resp.ErrorCode = kerr.GroupIDNotFound.Code
	case g.state != stateEmpty && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
	}
	if resp.ErrorCode != 0 {
		call.reply(resp)
		return
	}
	md := g.co.node.Metadata()
	subscribed := g.subscribedTopics()
	var recs []protocol.Record
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		t := md.Topics[rt.Topic]
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case !hasPartition(t, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case g.state != stateEmpty && (subscribed == nil || subscribed[rt.Topic]):
				// Unknown subscriptions (unparsable consumer metadata, no
				// protocol chosen yet) count as subscribed, as in Kafka.
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				// Pending offsets of a transaction go too (Kafka's deleteOffsets).
				if _, ok, pending := g.store.fetchOffset(g.name, rt.Topic, rp.Partition); ok || pending {
					recs = append(recs, offsetTombstone(g.name, rt.Topic, rp.Partition))
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(recs) == 0 {
		call.reply(resp)
		return
	}
	g.write(recs, func(err error) {
		if err != nil {
			resp.ErrorCode = writeError(err).Code
		}
		call.reply(resp)
	})
}

// handleDelete deletes an empty group: tombstones for its offsets and its
// metadata. Calls arriving meanwhile wait, then go to a fresh actor that
// loads whatever the log says once the tombstones are applied.
func (g *group) handleDelete(call *Call) {
	switch {
	case !g.known():
		call.reply(kerr.GroupIDNotFound)
		return
	case g.state != stateEmpty || len(g.classic.members) > 0:
		// Members still waiting for an id (MEMBER_ID_REQUIRED) don't make
		// an Empty group non-empty, as in Kafka.
		call.reply(kerr.NonEmptyGroup)
		return
	}
	recs := append(g.store.allOffsetTombstones(g.name), groupTombstone(g.name))
	g.die(recs, func(err error) {
		if err != nil {
			call.reply(writeError(err))
			return
		}
		call.reply((*kerr.Error)(nil))
	})
}

// die writes the group's last records; the group is Dead meanwhile and
// gives way to a fresh actor once they are written (or failed).
func (g *group) die(recs []protocol.Record, then func(error)) {
	g.setState(StateDead)
	g.write(recs, func(err error) {
		then(err)
		g.retire() // the stash goes to a fresh actor when this one stops
	})
}

func (g *group) describe() kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = g.name
	if !g.known() {
		d.State = StateDead.String()
		return d
	}
	if g.kind == groupConsumer {
		// Kafka 4 describes only classic groups through this API; the
		// handler makes it GROUP_ID_NOT_FOUND from v6.
		msg := "Group " + g.name + " is not a classic group."
		d.State, d.ErrorMessage = StateDead.String(), &msg
		return d
	}
	d.State, d.ProtocolType = g.state.String(), g.protocolType
	stable := g.state == stateStable
	if stable {
		d.Protocol = g.protocol
	}
	for _, id := range g.classic.sortedIDs() {
		m := g.classic.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.ClientID, dm.ClientHost = id, m.clientID, m.clientHost
		if m.instanceID != "" {
			inst := m.instanceID
			dm.InstanceID = &inst
		}
		if stable {
			dm.ProtocolMetadata, dm.MemberAssignment = m.metadataFor(g.protocol), m.assignment
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// consumerCommitError is ConsumerGroup.validateOffsetCommit (Kafka 4.0):
// a commit without a member epoch is a simple consumer's, allowed while
// the group has no members; a member commits with its current epoch
// (STALE_MEMBER_EPOCH otherwise) and, being a KIP-848 consumer, with
// OffsetCommit v9+.
func (g *group) consumerCommitError(req *kmsg.OffsetCommitRequest) *kerr.Error {
	cg := &g.consumer
	if req.Generation < 0 && len(cg.members) == 0 {
		return nil
	}
	m := cg.members[req.MemberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case req.Version < 9:
		return kerr.UnsupportedVersion
	case req.Generation != m.epoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}

// ValidateOffsetFetch is ConsumerGroup.validateOffsetFetch, for OffsetFetch
// v9+ naming a member: a consumer group's member must be known and at its
// current epoch. Classic groups, and requests naming no member, are not
// checked. The epochs are those the group actor last published, which it
// does before answering a heartbeat.
func (co *Coordinator) ValidateOffsetFetch(group string, memberID *string, epoch int32) *kerr.Error {
	if memberID == nil && epoch < 0 {
		return nil
	}
	co.mu.Lock()
	ref := co.actors[group]
	co.mu.Unlock()
	if ref == nil {
		return nil
	}
	l := ref.listing.Load()
	if l == nil || l.Kind != groupConsumer {
		return nil
	}
	var id string
	if memberID != nil {
		id = *memberID
	}
	e, ok := l.epochs[id]
	switch {
	case !ok:
		return kerr.UnknownMemberID
	case e != epoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}

// CommittedOffsets are group's committed offsets by topic and partition,
// read from the store of its offsets partition (which a commit updates
// before it is answered). Check CoordinatorErr first.
func (co *Coordinator) CommittedOffsets(group string) map[string]map[int32]Offset {
	return co.store(co.PartitionFor(group)).offsets(group)
}

// CommittedOffset is group's committed offset of topic/partition.
func (co *Coordinator) CommittedOffset(group, topic string, partition int32) (Offset, bool) {
	return co.store(co.PartitionFor(group)).offset(group, topic, partition)
}

// FetchOffset is OffsetFetch's view of one partition: the committed offset
// (never a transaction's pending one) and whether a transaction holds a
// pending offset for it, which RequireStable answers UNSTABLE_OFFSET_COMMIT.
func (co *Coordinator) FetchOffset(group, topic string, partition int32) (o Offset, ok, pending bool) {
	return co.store(co.PartitionFor(group)).fetchOffset(group, topic, partition)
}

// PendingOffsets are the partitions of group for which a transaction holds
// a pending offset, nil when none. Read it before CommittedOffsets: a
// marker landing in between then shows as still pending, never as a
// stable offset older than the committed one.
func (co *Coordinator) PendingOffsets(group string) map[string]map[int32]bool {
	return co.store(co.PartitionFor(group)).pendingPartitions(group)
}
