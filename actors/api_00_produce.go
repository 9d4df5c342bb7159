package actors

// Produce v3+: each partition's batch is validated here (one magic-2
// batch, CRC32C, size against the topic's max.message.bytes) and proposed
// to the partition's replica, which assigns offsets at apply. acks=-1 and
// acks=1 are answered once the batch is applied, which is after the raft
// log holding it was fsynced; acks=0 consumes its place in the response
// order and writes nothing.
//
// Transactional batches (KIP-890 part 1): a batch of a producer whose
// transaction is not yet open in the partition (its published TxnView)
// is first verified with the transaction coordinator
// (verifyTxnPartitions), and proposed as verified only if the coordinator
// confirms the partition is in the producer's ongoing transaction; the
// partition's leader refuses an unverified batch that would start one.

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
	// A transactional batch without a transactional id: Kafka answers the
	// whole request so (its authorization of the id fails).
	txnNoID := req.TransactionID == nil && hasTransactionalBatch(req)
	var verify map[txnProducer]*txnVerify
	propose := func(h *partitionHandle, sp *kmsg.ProduceResponseTopicPartition, cmd []byte) {
		ctx.Send(h.pid, &raftactor.Propose{
			Data:    cmd,
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
			if txnNoID {
				sp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
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
			var guard uint64
			if bh.Transactional() {
				guard = h.sm.TxnGuard() // before the check: a marker after it makes the answer stale
			}
			if bh.Transactional() && !h.sm.Txns().OpenFor(bh.ProducerID, bh.ProducerEpoch) {
				if verify == nil {
					verify = make(map[txnProducer]*txnVerify)
				}
				k := txnProducer{bh.ProducerID, bh.ProducerEpoch}
				tv := verify[k]
				if tv == nil {
					tv = &txnVerify{parts: make(map[string][]int32)}
					verify[k] = tv
				}
				tv.parts[rt.Topic] = append(tv.parts[rt.Topic], rp.Partition)
				tv.waiting = append(tv.waiting, txnWaiting{h, sp, rt.Topic, rp.Partition, rp.Records, guard})
				continue
			}
			propose(h, sp, raftactor.EncodeProduce(rp.Records))
		}
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	for k, tv := range verify {
		c.b.verifyTxnPartitions(*req.TransactionID, k.pid, k.epoch, tv.parts, func(errs map[string]map[int32]*kerr.Error) {
			// Back on the connection's actor: the response is its own.
			root.Send(self, &deferred{fn: func() {
				if answered {
					return
				}
				for _, w := range tv.waiting {
					perr, ok := errs[w.topic][w.partition]
					switch {
					case !ok:
						// Not answered for: not confirmed, so not written.
						perr = kerr.InvalidTxnState
					case perr == nil:
						propose(w.h, w.sp, raftactor.EncodeVerifiedProduce(w.records, w.guard))
						continue
					}
					pending--
					w.sp.ErrorCode = perr.Code
				}
				finish()
			}})
		})
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

// txnProducer is a transactional producer's id and epoch.
type txnProducer struct {
	pid   int64
	epoch int16
}

// txnVerify is what one produce request asks the coordinator to verify
// for one producer, and the partitions waiting for the answer.
type txnVerify struct {
	parts   map[string][]int32
	waiting []txnWaiting
}

type txnWaiting struct {
	h         *partitionHandle
	sp        *kmsg.ProduceResponseTopicPartition
	topic     string
	partition int32
	records   []byte
	guard     uint64 // the partition's TxnGuard before the coordinator was asked
}

// hasTransactionalBatch reports whether any partition of req carries a
// batch with the transactional attribute (Kafka's
// ProduceRequest.hasTransactionalRecords).
func hasTransactionalBatch(req *kmsg.ProduceRequest) bool {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if h, err := protocol.ParseBatchHeader(rp.Records); err == nil && h.Transactional() {
				return true
			}
		}
	}
	return false
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
