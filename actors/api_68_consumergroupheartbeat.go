package actors

// ConsumerGroupHeartbeat v0-v1 (KIP-848): a consumer group member joins
// (epoch 0), heartbeats with its epoch and what it owns, and leaves (-1,
// or -2 for a static member); the coordinator answers with the member's
// epoch and, when it changed, its assignment (groups/consumer*.go). v1
// (Kafka 4.0, KIP-1082) requires a client-made member id; v0's members
// are named by the coordinator.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
	"github.com/chronik-actor/chronik-actor/protocol"
)

func init() { register(kmsg.ConsumerGroupHeartbeat, handleConsumerGroupHeartbeat) }

func handleConsumerGroupHeartbeat(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.ConsumerGroupHeartbeatRequest)
	if req.Group == "" {
		c.respond(r, consumerHeartbeatError(req, kerr.InvalidRequest, "GroupId can't be empty."))
		return
	}
	if err := c.b.groups.CoordinatorErr(req.Group); err != nil {
		c.respond(r, consumerHeartbeatError(req, err, ""))
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	c.b.groups.Route(req.Group, groups.NewCall(req, c.clientInfo(r), func(v any) {
		// The group answers a response, or an error when it cannot
		// handle the call at all (it stopped, or is no longer ours).
		resp, ok := v.(kmsg.Response)
		if !ok {
			err, _ := v.(*kerr.Error)
			if err == nil {
				err = kerr.NotCoordinator
			}
			resp = consumerHeartbeatError(req, err, "")
		}
		root.Send(self, &asyncDone{seq: r.seq, frame: protocol.AppendResponse(nil, r.hdr, resp)})
	}))
}

func consumerHeartbeatError(req *kmsg.ConsumerGroupHeartbeatRequest, err *kerr.Error, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.ErrorCode = err.Code
	if msg != "" {
		resp.ErrorMessage = &msg
	}
	return resp
}
