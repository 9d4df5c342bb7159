package actors

// DeleteGroups v0-v3: an empty group's offsets and metadata are
// tombstoned; NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND for
// a group the coordinator has nothing of.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.DeleteGroups, handleDeleteGroups) }

func handleDeleteGroups(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(req.Groups))
	setErr := func(out *kmsg.DeleteGroupsResponseGroup, err *kerr.Error) {
		if err != nil {
			msg := err.Message
			out.ErrorCode = err.Code
			if req.Version >= 3 {
				out.ErrorMessage = &msg
			}
		}
	}
	c.askGroups(ctx, r, req.Groups, func() any { return &groups.DeleteOp{} }, func(i int, v any, err *kerr.Error) {
		out := &resp.Groups[i]
		*out = kmsg.NewDeleteGroupsResponseGroup()
		out.Group = req.Groups[i]
		if err == nil {
			verr, ok := v.(*kerr.Error)
			if !ok {
				verr = kerr.CoordinatorNotAvailable // no answer
			}
			err = verr
		}
		setErr(out, err)
	}, func() { c.respond(r, resp) })
}
