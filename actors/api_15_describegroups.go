package actors

// DescribeGroups v0-v6: each group's state, protocol and members (with
// metadata and assignment once Stable), asked of the group's actor. An
// unknown group is Dead with no error before v6, GROUP_ID_NOT_FOUND from
// v6 (KIP-1043). A KIP-848 consumer group is Dead too, "not a classic
// group", as Kafka 4 answers; ConsumerGroupDescribe describes it.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.DescribeGroups, handleDescribeGroups) }

func handleDescribeGroups(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Groups = make([]kmsg.DescribeGroupsResponseGroup, len(req.Groups))
	c.askGroups(ctx, r, req.Groups, func() any { return &groups.DescribeOp{} }, func(i int, v any, err *kerr.Error) {
		name := req.Groups[i]
		d, ok := v.(kmsg.DescribeGroupsResponseGroup)
		switch {
		case err != nil:
			d = kmsg.NewDescribeGroupsResponseGroup()
			d.ErrorCode = err.Code
		case !ok:
			d = kmsg.NewDescribeGroupsResponseGroup()
			d.ErrorCode = kerr.CoordinatorNotAvailable.Code // no answer
		case req.Version >= 6 && d.ErrorCode == 0 && d.State == groups.StateDead.String():
			msg := "Group " + name + " not found."
			if d.ErrorMessage != nil {
				msg = *d.ErrorMessage // a consumer group: not a classic one
			}
			d.ErrorCode, d.ErrorMessage = kerr.GroupIDNotFound.Code, &msg
		}
		d.Group = name
		resp.Groups[i] = d
	}, func() { c.respond(r, resp) })
}
