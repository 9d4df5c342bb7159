package actors

// ConsumerGroupDescribe v0-v1 (KIP-848): each consumer group's epochs,
// state, assignor and members with their current and target assignments
// (topic ids and names), asked of the group's actor. A group that is not
// a consumer group is GROUP_ID_NOT_FOUND, as in Kafka. v1 adds the member
// type (1: a consumer-protocol member).

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.ConsumerGroupDescribe, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	resp.Groups = make([]kmsg.ConsumerGroupDescribeResponseGroup, len(req.Groups))
	c.askGroups(ctx, r, req.Groups, func() any { return &groups.ConsumerDescribeOp{} }, func(i int, v any, err *kerr.Error) {
		d, ok := v.(kmsg.ConsumerGroupDescribeResponseGroup)
		if !ok {
			d = kmsg.NewConsumerGroupDescribeResponseGroup()
			d.ErrorCode = kerr.CoordinatorNotAvailable.Code // no answer
			if verr, _ := v.(*kerr.Error); verr != nil {
				d.ErrorCode = verr.Code
			}
			if err != nil {
				d.ErrorCode = err.Code
			}
		}
		d.Group = req.Groups[i]
		resp.Groups[i] = d
	}, func() { c.respond(r, resp) })
}
