package actors

// TxnOffsetCommit v0-v5: a transaction's offsets, handed to the group's
// actor like OffsetCommit, which checks the member (v3+ names it) and
// writes them as one transactional batch of the producer to the group's
// __consumer_offsets partition. They stay pending there, invisible to
// OffsetFetch, until the transaction's marker reaches that partition.
// The transaction coordinator is not consulted: v5's implicit
// AddOffsetsToTxn (KIP-890 part 2) and the verification of the
// transaction are the coordinator's to add, before callGroup.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.TxnOffsetCommit, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.TxnOffsetCommitRequest)
	if req.Group == "" {
		// Kafka's GroupCoordinatorService refuses an empty group id.
		c.respond(r, groups.CallError(req, kerr.InvalidGroupID).(kmsg.Response))
		return
	}
	c.callGroup(ctx, r, req.Group)
}
