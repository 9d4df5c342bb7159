package actors

// InitProducerId v0-v5 for idempotent producers: every call gets a new
// producer id (epoch 0) from the controller, so ids survive restarts and
// are never reused. Transactions are not served yet.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/raftactor"
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
	c.proposeController(ctx, raftactor.AllocProducerIDCmd(),
		func(res *raftactor.ControllerResult, err error) {
			switch {
			case err != nil:
				resp.ErrorCode = kerr.NotController.Code
			case res.Err != nil:
				resp.ErrorCode = res.Err.Code
			default:
				resp.ProducerID, resp.ProducerEpoch = res.ProducerID, 0
			}
			c.respond(r, resp)
		})
}
