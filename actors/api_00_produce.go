package actors

// Produce v3+: each partition's batch is validated here (one magic-2
// batch, CRC32C, size against the topic's max.message.bytes) and proposed
// to the partition's replica, which assigns offsets at apply. acks=-1 and
// acks=1 are answered once the batch is applied, which is after the raft
// log holding it was fsynced; acks=0 consumes its place in the response
// order and writes nothing.

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

func init() { register(kmsg.Produce, handleProduce) }

func handleProduce(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	validAcks := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	pending := 0
	answered := false
	var timeout *time.Timer
	finish := func() {
		if pending == 0 && req.Acks != 0 && !answered {
			answered = true
			if timeout != nil {
				// Otherwise the timer holds the request's record bytes
				// for the whole produce timeout (10-30 s in clients).
				timeout.Stop()
			}
			c.respond(r, resp)
		}
	}
	bytesIn := 0
	var replyTo *actor.PID
	if req.Acks != 0 {
		replyTo = ctx.Self()
	}
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			if !validAcks {
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
				continue
			}
			h := c.b.replicas.get(rt.Topic, rp.Partition)
			if !c.b.partitionExists(rt.Topic, rp.Partition) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if err := servingErr(h); err != nil {
				sp.ErrorCode = err.Code
				continue
			}
			if c.b.diskLow.Load() {
				sp.ErrorCode = kerr.KafkaStorageError.Code
				msg := "free disk space is below the node's floor (storage_min_free_bytes)"
				sp.ErrorMessage = &msg
				continue
			}
			if internalTopic(rt.Topic) {
				// Only the group coordinator writes there (Kafka: "Cannot
				// append to internal topic").
				sp.ErrorCode = kerr.InvalidTopicException.Code
				continue
			}
			bh, kerrv := protocol.ValidateProduceBatch(rp.Records, maxMessageBytes(h.topic))
			if kerrv == nil && bh.Codec() == protocol.CodecZstd && req.Version < 7 {
				kerrv = kerr.UnsupportedCompressionType // zstd needs produce v7+
			}
			if kerrv != nil {
				sp.ErrorCode = kerrv.Code
				msg := kerrv.Message
				sp.ErrorMessage = &msg
				continue
			}
			pending++
			bytesIn += len(rp.Records)
			// Stays the answer if the replica does not reply in time.
			sp.ErrorCode = kerr.RequestTimedOut.Code
			ctx.Send(h.pid, &raftactor.Propose{
				Data:    raftactor.EncodeProduce(rp.Records),
				ReplyTo: replyTo,
				Then: func(v any, err error) {
					if answered {
						return // timed out; the client retries (idempotently)
					}
					pending--
					sp.ErrorCode = 0
					if err != nil {
						sp.ErrorCode = proposeErrCode(err)
						if sp.ErrorCode == kerr.NotLeaderForPartition.Code {
							c.b.metrics.notLeader.Inc()
						}
					} else {
						res := v.(*raftactor.ProduceResult)
						if res.Err != nil {
							sp.ErrorCode = res.Err.Code
						} else {
							sp.BaseOffset, sp.LogStartOffset = res.BaseOffset, res.LogStartOffset
						}
					}
					finish()
				},
			})
		}
	}
	if bytesIn > 0 {
		c.b.metrics.bytesIn.Add(float64(bytesIn))
	}
	if req.Acks == 0 {
		c.noResponse(r)
		return
	}
	if pending > 0 {
		timeout = c.after(ctx, produceTimeout(req.TimeoutMillis), func() {
			pending = 0
			finish()
		})
	}
	finish()
}

// produceTimeout is how long a produce waits for its replicas: the
// request's timeout, within sane bounds (Kafka's default is 30 s).
func produceTimeout(ms int32) time.Duration {
	d := time.Duration(ms) * time.Millisecond
	return min(max(d, time.Second), 5*time.Minute)
}

// proposeErrCode maps a replica's refusal to the retriable Kafka error a
// client answers by refreshing metadata and retrying.
func proposeErrCode(err error) int16 {
	if errors.Is(err, raftactor.ErrNotLeader) || errors.Is(err, raftactor.ErrStopped) {
		return kerr.NotLeaderForPartition.Code
	}
	return kerr.RequestTimedOut.Code
}
