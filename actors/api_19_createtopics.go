package actors

// CreateTopics v2-v7: names, partition counts, replication factor and
// configs are validated here; the topic is created by the controller,
// whose apply spawns the partition replicas before the answer goes out, so
// a client can produce right after.

import (
	"fmt"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

func init() { register(kmsg.CreateTopics, handleCreateTopics) }

func handleCreateTopics(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	g := newGather(func() { c.respond(r, resp) })
	if total := requestedPartitions(req, c.b.cfg.DefaultPartitions); total > maxPartitionsPerRequest {
		// As KRaft's controller: the whole request is refused. Without the
		// cap one request could ask for 2^31-1 partitions and the node
		// would die allocating them.
		msg := "Excessively large number of partitions per request."
		for i, rt := range req.Topics {
			st := &resp.Topics[i]
			*st = kmsg.NewCreateTopicsResponseTopic()
			st.Topic = rt.Topic
			st.ErrorCode, st.ErrorMessage = kerr.PolicyViolation.Code, &msg
		}
		c.respond(r, resp)
		return
	}
	seen := map[string]bool{}
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		fail := func(e *kerr.Error, msg string) {
			st.ErrorCode = e.Code
			if msg != "" {
				st.ErrorMessage = &msg
			}
		}
		if seen[rt.Topic] {
			fail(kerr.InvalidRequest, "duplicate topic in request")
			continue
		}
		seen[rt.Topic] = true
		if err := validTopicName(rt.Topic); err != nil {
			fail(kerr.InvalidTopicException, err.Error())
			continue
		}
		partitions, rf := rt.NumPartitions, rt.ReplicationFactor
		if len(rt.ReplicaAssignment) > 0 {
			if partitions != -1 || rf != -1 {
				fail(kerr.InvalidRequest, "both replica assignment and partitions/replication factor given")
				continue
			}
			partitions = int32(len(rt.ReplicaAssignment))
			rf = int16(len(rt.ReplicaAssignment[0].Replicas))
		}
		if partitions == -1 {
			partitions = c.b.cfg.DefaultPartitions
		}
		if rf == -1 {
			rf = c.b.cfg.DefaultReplicationFactor
		}
		if partitions <= 0 {
			fail(kerr.InvalidPartitions, "number of partitions must be at least 1")
			continue
		}
		if rf < 1 {
			fail(kerr.InvalidReplicationFactor, "replication factor must be at least 1")
			continue
		}
		// As Kafka: against the brokers up now, so that a topic is not
		// created with more replicas than can take its writes.
		if live := c.b.liveCount(); int(rf) > live {
			fail(kerr.InvalidReplicationFactor, fmt.Sprintf("Replication factor: %d larger than available brokers: %d.", rf, live))
			continue
		}
		var assigned [][]int32
		for _, a := range rt.ReplicaAssignment {
			assigned = append(assigned, a.Replicas)
		}
		if err := raftactor.CheckAssignment(c.b.nodeIDs(), assigned); err != nil {
			fail(kerr.InvalidReplicaAssignment, err.Error())
			continue
		}
		configs := map[string]string{}
		for _, cf := range rt.Configs {
			if cf.Value != nil {
				configs[cf.Name] = *cf.Value
			}
		}
		if e, msg := validateConfigs(configs); e != nil {
			fail(e, msg)
			continue
		}
		if _, exists := c.b.controller.Metadata().Topics[rt.Topic]; exists {
			fail(kerr.TopicAlreadyExists, "topic '"+rt.Topic+"' already exists")
			continue
		}
		st.NumPartitions, st.ReplicationFactor = partitions, rf
		if req.ValidateOnly {
			continue
		}
		g.add()
		c.proposeController(ctx, c.b.createTopicCmd(rt.Topic, configs, partitions, rf, assigned),
			func(res *raftactor.ControllerResult, err error) {
				switch {
				case err != nil:
					fail(kerr.NotController, err.Error())
				case res.Err != nil:
					fail(res.Err, "")
				default:
					st.TopicID = res.Topic.ID
				}
				g.done()
			})
	}
	g.done()
}

// maxPartitionsPerRequest is KRaft's MAX_PARTITIONS_PER_BATCH.
const maxPartitionsPerRequest = 10000

// requestedPartitions counts the partitions a CreateTopics asks for, as
// KRaft's ReplicationControlManager does: -1 is the default, a non-positive
// count adds nothing (it fails on its own), an assignment adds its length.
func requestedPartitions(req *kmsg.CreateTopicsRequest, defaultPartitions int32) int64 {
	var total int64
	for _, rt := range req.Topics {
		switch {
		case len(rt.ReplicaAssignment) > 0:
			total += int64(len(rt.ReplicaAssignment))
		case rt.NumPartitions == -1:
			total += int64(defaultPartitions)
		case rt.NumPartitions > 0:
			total += int64(rt.NumPartitions)
		}
	}
	return total
}
