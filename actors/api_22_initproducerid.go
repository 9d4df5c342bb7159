package actors

// InitProducerId v0-v5 for idempotent producers: every call gets a new
// producer id (epoch 0) from this node's block of ids, which the
// controller allocates (producer_ids.go), so ids are never reused across
// nodes or restarts. Transactions are not served yet.

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.InitProducerID, handleInitProducerID) }

func handleInitProducerID(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		// No transaction coordinator: the answer a Kafka broker gives when
		// transactions are unavailable.
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
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
