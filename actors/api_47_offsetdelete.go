package actors

// OffsetDelete v0: tombstones committed offsets of topics the group does
// not consume (GROUP_SUBSCRIBED_TO_TOPIC for those it does) (groups/offsets.go).

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.OffsetDelete, handleOffsetDelete) }

func handleOffsetDelete(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.OffsetDeleteRequest)
	if req.Group == "" {
		c.respond(r, groups.CallError(req, kerr.InvalidGroupID).(kmsg.Response))
		return
	}
	c.callGroup(ctx, r, req.Group)
}
