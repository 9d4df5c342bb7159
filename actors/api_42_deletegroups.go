package actors

// DeleteGroups v0-v3: an empty group's offsets and metadata are
// tombstoned; NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND for
// a group the coordinator has nothing of.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DeleteGroups, handleDeleteGroups) }

func handleDeleteGroups(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(req.Groups))
	pending := 0
	finish := func() {
		if pending == 0 {
			c.respond(r, resp)
		}
	}
	setErr := func(out *kmsg.DeleteGroupsResponseGroup, err *kerr.Error) {
		if err != nil {
			msg := err.Message
			out.ErrorCode = err.Code
			if req.Version >= 3 {
				out.ErrorMessage = &msg
			}
		}
	}
	for i, name := range req.Groups {
		out := &resp.Groups[i]
		*out = kmsg.NewDeleteGroupsResponseGroup()
		out.Group = name
		err := c.b.groups.coordinatorErr(name)
		if name == "" {
			err = kerr.InvalidGroupID
		}
		if err != nil {
			setErr(out, err)
			continue
		}
		pending++
		c.askGroup(ctx, r, name, &deleteOp{}, func(v any) {
			pending--
			err, ok := v.(*kerr.Error)
			if !ok {
				err = kerr.CoordinatorNotAvailable // no answer
			}
			setErr(out, err)
			finish()
		})
	}
	finish()
}
