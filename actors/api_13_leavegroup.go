package actors

// LeaveGroup v0-v5: by member id (v0-v2) or by batched member identities,
// group.instance.id included (v3+) (groups/classic_sync.go).

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.LeaveGroup, handleLeaveGroup) }

func handleLeaveGroup(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.LeaveGroupRequest)
	if req.Group == "" {
		c.respond(r, groups.CallError(req, kerr.InvalidGroupID).(kmsg.Response))
		return
	}
	c.callGroup(ctx, r, req.Group)
}
