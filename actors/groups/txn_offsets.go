package groups

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// TxnOffsetCommit (KIP-98, KIP-447): the offsets of a transaction,
// written as ONE transactional batch of producer pid at its epoch to the
// group's offsets partition. The store keeps them pending until the
// producer's marker lands in that partition (store_txn.go); OffsetFetch
// never shows them before. The group checks are Kafka 4's
// OffsetMetadataManager.validateTransactionalOffsetCommit.

func (g *group) handleTxnOffsetCommit(call *Call, req *kmsg.TxnOffsetCommitRequest) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	groupErr := g.txnCommitError(req)
	if groupErr == nil && req.ProducerID < 0 {
		// A transactional batch needs a producer; Kafka's transaction
		// coordinator would not know this one for the transactional id.
		groupErr = kerr.InvalidProducerIDMapping
	}
	md := g.co.node.Metadata()
	now := time.Now().UnixMilli()
	var recs []protocol.Record
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		t := md.Topics[rt.Topic]
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			meta := commitMetadata(rp.Metadata)
			switch {
			// Kafka's KafkaApis answers unknown partitions before the
			// coordinator sees the request, so they win over group errors.
			case !hasPartition(t, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case groupErr != nil:
				sp.ErrorCode = groupErr.Code
			case len(meta) > maxOffsetMetadata:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				recs = append(recs, offsetCommitRecord(g.name, rt.Topic, rp.Partition,
					Offset{Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch, Metadata: meta, CommitTimestamp: now}))
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(recs) == 0 {
		call.reply(resp)
		return
	}
	var written []*kmsg.TxnOffsetCommitResponseTopicPartition
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if sp := &resp.Topics[i].Partitions[j]; sp.ErrorCode == 0 {
				written = append(written, sp)
			}
		}
	}
	// One batch for the whole request: the partition tracks the
	// transaction from its first batch, and a marker ends all of it.
	batch := protocol.BuildTransactionalBatch(req.ProducerID, req.ProducerEpoch, recs, now)
	g.writeBatch(batch, func(err error) {
		if err != nil {
			code := txnWriteError(err).Code
			for _, sp := range written {
				sp.ErrorCode = code
			}
		}
		call.reply(resp)
	})
}

// txnCommitError checks the request's member, as Kafka's
// validateTransactionalOffsetCommit and the groups' validateOffsetCommit
// with isTransactional set: generation -1 with no member is a producer
// outside group management, accepted even while the group has members;
// a group that does not exist takes only such commits (ILLEGAL_GENERATION
// otherwise); a stale consumer-group epoch is ILLEGAL_GENERATION too.
// Unlike OffsetCommit there is no REBALANCE_IN_PROGRESS: the transaction
// is fenced by its generation alone.
func (g *group) txnCommitError(req *kmsg.TxnOffsetCommitRequest) *kerr.Error {
	if g.kind == groupConsumer {
		cg := &g.consumer
		if req.Generation < 0 && len(cg.members) == 0 {
			return nil
		}
		m := cg.members[req.MemberID]
		switch {
		case m == nil:
			return kerr.UnknownMemberID
		case req.Generation != m.epoch:
			return kerr.IllegalGeneration
		}
		return nil
	}
	switch {
	case !g.known():
		if req.Generation < 0 {
			return nil // a simple group, created by the commit
		}
		return kerr.IllegalGeneration
	case req.Generation < 0 && g.state == stateEmpty:
		return nil
	case req.Generation < 0 && req.MemberID == "" && req.InstanceID == nil:
		return nil // transactional commits need no member (v0-v2 name none)
	}
	if req.InstanceID != nil {
		// Kafka's validateMember: the instance id decides, not the member id.
		id, ok := g.classic.static[*req.InstanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID
		case id != req.MemberID:
			return kerr.FencedInstanceID
		}
	} else if g.classic.members[req.MemberID] == nil {
		return kerr.UnknownMemberID
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration
	}
	return nil
}

// txnWriteError is the answer for a failed write of a transaction's
// offsets: the partition's producer checks (a fenced or stale epoch, a
// transaction in the wrong state) reach the client as they are; the
// rest as for any group write.
func txnWriteError(err error) *kerr.Error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke {
		case kerr.InvalidProducerEpoch, kerr.ProducerFenced, kerr.InvalidTxnState,
			kerr.InvalidProducerIDMapping, kerr.TransactionCoordinatorFenced, kerr.TransactionAbortable:
			return ke
		}
	}
	return writeError(err)
}
