package actors

// DescribeProducers v0 (KIP-664), served by partition leaders: the
// active producers of each partition with their epoch, last sequence
// and timestamp, the coordinator epoch of their last marker and the
// first offset of their open transaction (-1: none), which is how an
// operator finds a hanging transaction. The producer table is the
// replica's applied state, so it is read on the replica's goroutine
// (raftactor.Inspect), off the connection actor.

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

func init() { register(kmsg.DescribeProducers, handleDescribeProducers) }

// describeProducersTimeout bounds the wait for a replica's answer; only a
// replica stuck or stopping takes that long.
const describeProducersTimeout = 10 * time.Second

func handleDescribeProducers(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.DescribeProducersRequest)
	c.async(ctx, r, func() kmsg.Response { return c.b.describeProducers(req) })
}

func (b *Broker) describeProducers(req *kmsg.DescribeProducersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	type ask struct {
		f  *actor.Future
		sp *kmsg.DescribeProducersResponseTopicPartition
	}
	var asks []ask
	resp.Topics = make([]kmsg.DescribeProducersResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DescribeProducersResponseTopicPartition, len(rt.Partitions))
		for j, part := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = part
			h := b.replicas.get(rt.Topic, part)
			switch {
			case !b.partitionExists(rt.Topic, part):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			case servingErr(h) != nil:
				sp.ErrorCode = servingErr(h).Code
				continue
			}
			f := actor.NewFuture(b.sys, describeProducersTimeout)
			sm, root, to := h.sm, b.sys.Root, f.PID()
			b.sys.Root.Send(h.pid, &raftactor.Inspect{Fn: func() { root.Send(to, sm.Producers()) }})
			asks = append(asks, ask{f, sp})
		}
	}
	for _, a := range asks {
		v, err := a.f.Result()
		states, ok := v.([]raftactor.ProducerState)
		if err != nil || !ok {
			a.sp.ErrorCode = kerr.RequestTimedOut.Code
			continue
		}
		a.sp.ActiveProducers = make([]kmsg.DescribeProducersResponseTopicPartitionActiveProducer, 0, len(states))
		for _, s := range states {
			ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
			ap.ProducerID, ap.ProducerEpoch = s.ProducerID, int32(s.Epoch)
			ap.LastSequence, ap.LastTimestamp = s.LastSequence, s.LastTimestamp
			ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = s.CoordinatorEpoch, s.TxnStartOffset
			a.sp.ActiveProducers = append(a.sp.ActiveProducers, ap)
		}
	}
	return resp
}
