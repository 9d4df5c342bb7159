package actors

// JoinGroup v0-v9: the join phase of the classic protocol, held open until the
// rebalance completes (groups/classic_join.go).

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.JoinGroup, handleJoinGroup) }

func handleJoinGroup(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.JoinGroupRequest)
	if req.Group == "" {
		c.respond(r, groups.CallError(req, kerr.InvalidGroupID).(kmsg.Response))
		return
	}
	c.callGroup(ctx, r, req.Group)
}
