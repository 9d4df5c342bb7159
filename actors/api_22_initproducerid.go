package actors

// InitProducerId v0-v5. Without a transactional id (an idempotent
// producer) every call gets a new producer id (epoch 0) from this node's
// block of ids, which the controller allocates (producer_ids.go), so ids
// are never reused across nodes or restarts. With one, the transaction
// coordinator of the id answers (actors/txns): the id's producer id, its
// epoch bumped, the previous producer fenced.

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/txns"
)

func init() { register(kmsg.InitProducerID, handleInitProducerID) }

func handleInitProducerID(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		id := *req.TransactionalID
		switch {
		case txnIDError(id) != nil:
			resp.ErrorCode = txnIDError(id).Code
		case req.TransactionTimeoutMillis <= 0 || int64(req.TransactionTimeoutMillis) > c.b.txns.MaxTimeout().Milliseconds():
			resp.ErrorCode = kerr.InvalidTransactionTimeout.Code
		default:
			c.callTxn(ctx, r, id, req, func(v any) kmsg.Response {
				res := v.(*txns.InitResult)
				resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = codeOf(res.Err), res.ProducerID, res.ProducerEpoch
				return resp
			})
			return
		}
		c.respond(r, resp)
		return
	}
	// Taking an id may wait for the controller (a block used up): that
	// wait happens off the connection's goroutine.
	type taken struct {
		id  int64
		err error
	}
	f := actor.NewFuture(ctx.ActorSystem(), controllerTimeout+5*time.Second)
	root := ctx.ActorSystem().Root
	go func() {
		id, err := c.b.producerIDs.take()
		root.Send(f.PID(), taken{id, err})
	}()
	ctx.ReenterAfter(f, func(v any, err error) {
		t, ok := v.(taken)
		var ke *kerr.Error
		switch {
		case err != nil || !ok:
			resp.ErrorCode = kerr.RequestTimedOut.Code
		case errors.As(t.err, &ke):
			resp.ErrorCode = ke.Code
		case t.err != nil:
			// No controller leader reachable: retriable, the client
			// tries again.
			resp.ErrorCode = kerr.NotController.Code
		default:
			resp.ProducerID, resp.ProducerEpoch = t.id, 0
		}
		c.respond(r, resp)
	})
}
