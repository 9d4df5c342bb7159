package actors

// SyncGroup v0-v5: the leader hands in the assignment, followers wait for it
// (groups/classic_sync.go).

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.SyncGroup, handleSyncGroup) }

func handleSyncGroup(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.SyncGroupRequest)
	if req.Group == "" {
		c.respond(r, groups.CallError(req, kerr.InvalidGroupID).(kmsg.Response))
		return
	}
	c.callGroup(ctx, r, req.Group)
}
