package actors

// CreatePartitions v0-v3: adds partitions to a topic. The controller
// appends them (new raft groups) and its apply opens their replicas here
// before the answer, as for CreateTopics. A count not above the current one
// is INVALID_PARTITIONS; an assignment naming another broker is
// INVALID_REPLICA_ASSIGNMENT; __consumer_offsets keeps its count, since
// groups are mapped to its partitions by that count.

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

func init() { register(kmsg.CreatePartitions, handleCreatePartitions) }

func handleCreatePartitions(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	g := newGather(func() { c.respond(r, resp) })
	md := c.b.controller.Metadata()
	seen := map[string]bool{}
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		fail := func(e *kerr.Error, msg string) {
			st.ErrorCode = e.Code
			st.ErrorMessage = &msg
		}
		t := md.Topics[rt.Topic]
		switch {
		case seen[rt.Topic]:
			fail(kerr.InvalidRequest, "duplicate topic in request")
			continue
		case t == nil:
			fail(kerr.UnknownTopicOrPartition, "topic '"+rt.Topic+"' does not exist")
			continue
		case internalTopic(rt.Topic):
			fail(kerr.InvalidRequest, "the partition count of "+rt.Topic+" cannot change: its keys are mapped to its partitions by it")
			continue
		case int(rt.Count) <= len(t.Groups):
			fail(kerr.InvalidPartitions, fmt.Sprintf("topic currently has %d partitions, which is higher than or equal to the requested %d", len(t.Groups), rt.Count))
			continue
		case rt.Count > maxPartitionsPerRequest:
			fail(kerr.InvalidPartitions, fmt.Sprintf("more than %d partitions", maxPartitionsPerRequest))
			continue
		}
		seen[rt.Topic] = true
		add := int(rt.Count) - len(t.Groups)
		if rt.Assignment != nil && len(rt.Assignment) != add {
			fail(kerr.InvalidReplicaAssignment, fmt.Sprintf("%d assignments for %d new partitions", len(rt.Assignment), add))
			continue
		}
		replicas := make([][]int32, add)
		bad := false
		for j := range replicas {
			replicas[j] = []int32{c.b.cfg.NodeID}
			if rt.Assignment != nil {
				ids := rt.Assignment[j].Replicas
				if len(ids) != 1 || ids[0] != c.b.cfg.NodeID {
					bad = true
				}
			}
		}
		if bad {
			fail(kerr.InvalidReplicaAssignment, fmt.Sprintf("every replica must be on broker %d, the only one", c.b.cfg.NodeID))
			continue
		}
		if req.ValidateOnly {
			continue
		}
		g.add()
		c.proposeController(ctx, raftactor.AddPartitionsCmd(rt.Topic, rt.Count, replicas),
			func(res *raftactor.ControllerResult, err error) {
				switch {
				case err != nil:
					fail(kerr.NotController, err.Error())
				case res.Err != nil:
					fail(res.Err, res.Err.Message)
				}
				g.done()
			})
	}
	g.done()
}
