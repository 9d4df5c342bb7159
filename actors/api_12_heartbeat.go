package actors

// Heartbeat v0-v4: keeps a classic member alive and tells it of rebalances
// (groups/classic_sync.go).

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.Heartbeat, handleHeartbeat) }

func handleHeartbeat(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.HeartbeatRequest)
	if req.Group == "" {
		c.respond(r, groups.CallError(req, kerr.InvalidGroupID).(kmsg.Response))
		return
	}
	c.callGroup(ctx, r, req.Group)
}
