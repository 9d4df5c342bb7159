package actors

// WriteTxnMarkers v1 (Kafka 4 dropped v0): the transaction coordinator's
// request to a partition leader to end a transaction there. Each named
// partition this node leads gets a COMMIT or ABORT control batch,
// proposed to its replica like a produce; the partition's leader fences
// a stale producer epoch (INVALID_PRODUCER_EPOCH) or coordinator epoch
// (TRANSACTION_COORDINATOR_FENCED) in Prepare. The coordinator of this
// node calls writeTxnMarkers directly for the partitions led here.

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

func init() { register(kmsg.WriteTxnMarkers, handleWriteTxnMarkers) }

// markerTimeout bounds the wait for one partition's marker to apply; the
// coordinator retries a partition answered REQUEST_TIMED_OUT.
const markerTimeout = 30 * time.Second

func handleWriteTxnMarkers(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.WriteTxnMarkersRequest)
	root, self := ctx.ActorSystem().Root, ctx.Self()
	c.b.writeTxnMarkers(req, func(resp *kmsg.WriteTxnMarkersResponse) {
		root.Send(self, &asyncDone{seq: r.seq, frame: protocol.AppendResponse(nil, r.hdr, resp)})
	})
}

// writeTxnMarkers writes each marker of req to every partition it names
// that this node leads, and calls done with the per-partition outcome once
// every one has answered: NOT_LEADER_OR_FOLLOWER where the replica here
// does not lead ready, UNKNOWN_TOPIC_OR_PARTITION where the partition does
// not exist, else what the partition's leader decided. It never blocks;
// done runs on another goroutine.
func (b *Broker) writeTxnMarkers(req *kmsg.WriteTxnMarkersRequest, done func(*kmsg.WriteTxnMarkersResponse)) {
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	type wait struct {
		f  *actor.Future
		sp *kmsg.WriteTxnMarkersResponseMarkerTopicPartition
	}
	var waits []wait
	now := time.Now().UnixMilli()
	resp.Markers = make([]kmsg.WriteTxnMarkersResponseMarker, len(req.Markers))
	for i, m := range req.Markers {
		rm := &resp.Markers[i]
		*rm = kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		rm.Topics = make([]kmsg.WriteTxnMarkersResponseMarkerTopic, len(m.Topics))
		for j, t := range m.Topics {
			rt := &rm.Topics[j]
			*rt = kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(t.Partitions))
			for k, part := range t.Partitions {
				sp := &rt.Partitions[k]
				*sp = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				sp.Partition = part
				h := b.replicas.get(t.Topic, part)
				if !b.partitionExists(t.Topic, part) {
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					continue
				}
				if err := servingErr(h); err != nil {
					sp.ErrorCode = err.Code
					continue
				}
				f := actor.NewFuture(b.sys, markerTimeout)
				batch := protocol.BuildControlBatch(m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch, now)
				b.sys.Root.Send(h.pid, &raftactor.Propose{Data: raftactor.EncodeProduce(batch), ReplyTo: f.PID()})
				waits = append(waits, wait{f, sp})
			}
		}
	}
	go func() {
		// Every future's clock started when it was made, so waiting on
		// them in turn waits markerTimeout at most.
		for _, w := range waits {
			w.sp.ErrorCode = markerOutcome(w.f.Result())
		}
		done(resp)
	}()
}

// markerOutcome is the error code of one partition's marker proposal.
func markerOutcome(v any, err error) int16 {
	if err != nil {
		if errors.Is(err, actor.ErrTimeout) {
			return kerr.RequestTimedOut.Code
		}
		return kerr.UnknownServerError.Code
	}
	res, ok := v.(*raftactor.Result)
	if !ok {
		return kerr.UnknownServerError.Code
	}
	if res.Err != nil {
		return proposeErrCode(res.Err)
	}
	if pr, ok := res.Value.(*raftactor.ProduceResult); ok && pr.Err != nil {
		return pr.Err.Code
	}
	return 0
}
