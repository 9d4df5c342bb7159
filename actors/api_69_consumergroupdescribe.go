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
)

func init() { register(kmsg.ConsumerGroupDescribe, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	resp.Groups = make([]kmsg.ConsumerGroupDescribeResponseGroup, len(req.Groups))
	pending := 0
	finish := func() {
		if pending == 0 {
			c.respond(r, resp)
		}
	}
	for i, name := range req.Groups {
		out := &resp.Groups[i]
		*out = kmsg.NewConsumerGroupDescribeResponseGroup()
		out.Group = name
		err := c.b.groups.coordinatorErr(name)
		if name == "" {
			err = kerr.InvalidGroupID
		}
		if err != nil {
			out.ErrorCode = err.Code
			continue
		}
		pending++
		c.askGroup(ctx, r, name, &consumerDescribeOp{}, func(v any) {
			pending--
			d, ok := v.(kmsg.ConsumerGroupDescribeResponseGroup)
			if !ok {
				d = kmsg.NewConsumerGroupDescribeResponseGroup()
				d.ErrorCode = kerr.CoordinatorNotAvailable.Code
				if err, _ := v.(*kerr.Error); err != nil {
					d.ErrorCode = err.Code
				}
			}
			d.Group = name
			*out = d
			finish()
		})
	}
	finish()
}
