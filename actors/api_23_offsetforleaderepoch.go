package actors

// OffsetForLeaderEpoch v2-v4: for a client's last fetched epoch, the end
// offset of that epoch in this log, so a consumer can detect truncation.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

func init() { register(kmsg.OffsetForLeaderEpoch, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			h := c.b.replicas.get(rt.Topic, rp.Partition)
			switch {
			case !c.b.partitionExists(rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case servingErr(h) != nil:
				sp.ErrorCode = servingErr(h).Code
			default:
				if sp.ErrorCode = checkLeaderEpoch(h, rp.CurrentLeaderEpoch); sp.ErrorCode == 0 {
					sp.LeaderEpoch, sp.EndOffset = raftactor.EndOffsetForEpoch(h.sm.Epochs(), rp.LeaderEpoch, h.replica.Term(), h.sm.View().HighWatermark())
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	c.respond(r, resp)
}
