package actors

// EndTxn v0-v5: the transaction coordinator commits or aborts the
// producer's open transaction (actors/txns). Transactions run as before
// KIP-890 part 2 (the cluster does not advertise transaction.version 2),
// so a v5 response carries no new producer id or epoch (-1).

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.EndTxn, handleEndTxn) }

func handleEndTxn(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if err := txnIDError(req.TransactionalID); err != nil {
		resp.ErrorCode = err.Code
		c.respond(r, resp)
		return
	}
	c.callTxn(ctx, r, req.TransactionalID, req, func(v any) kmsg.Response {
		err, _ := v.(*kerr.Error)
		resp.ErrorCode = codeOf(err)
		return resp
	})
}
