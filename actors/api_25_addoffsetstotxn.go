package actors

// AddOffsetsToTxn v0-v4: the group's __consumer_offsets partition joins
// the producer's transaction, so that its TxnOffsetCommit offsets get the
// transaction's marker too.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/txns"
)

func init() { register(kmsg.AddOffsetsToTxn, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if err := txnIDError(req.TransactionalID); err != nil {
		resp.ErrorCode = err.Code
		c.respond(r, resp)
		return
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		c.respond(r, resp)
		return
	}
	op := &txns.AddOp{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch,
		Group: req.Group, Key: req.Key(), Version: req.Version}
	c.callTxn(ctx, r, req.TransactionalID, op, func(v any) kmsg.Response {
		res := v.(*txns.AddResult)
		err := res.Err
		for _, ps := range res.Partitions {
			for _, e := range ps {
				if err == nil {
					err = e
				}
			}
		}
		resp.ErrorCode = codeOf(err)
		return resp
	})
}
