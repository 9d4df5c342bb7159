package actors

// AddPartitionsToTxn v0-v5. v0-v3 are a client's: partitions join its
// open transaction (opening it). v4+ are a broker's: a batch of
// transactions, each possibly VerifyOnly, which only checks that the
// partitions are in it (verifyTxnPartitions sends those).

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/txns"
	"github.com/chronik-actor/chronik-actor/protocol"
)

func init() { register(kmsg.AddPartitionsToTxn, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.AddPartitionsToTxnRequest)
	if req.Version >= 4 {
		c.addPartitionsBatch(ctx, r, req)
		return
	}
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	parts := map[string][]int32{}
	for _, rt := range req.Topics {
		parts[rt.Topic] = append(parts[rt.Topic], rt.Partitions...)
	}
	op := &txns.AddOp{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch,
		Partitions: parts, Key: req.Key(), Version: req.Version}
	answer := func(v any) kmsg.Response {
		res := v.(*txns.AddResult)
		for _, rt := range req.Topics {
			st := kmsg.NewAddPartitionsToTxnResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				sp.Partition = p
				sp.ErrorCode = addedCode(res, rt.Topic, p)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	if err := txnIDError(req.TransactionalID); err != nil {
		c.respond(r, answer(&txns.AddResult{Err: err}))
		return
	}
	c.callTxn(ctx, r, req.TransactionalID, op, answer)
}

// addedCode is the answer for topic/p in res, in either version's
// response: the request's error, or else the partition's own.
func addedCode(res *txns.AddResult, topic string, p int32) int16 {
	if res.Err != nil {
		return res.Err.Code
	}
	return codeOf(res.Partitions[topic][p])
}

// addPartitionsBatch serves a broker's v4+ request: every transaction is
// asked of its own coordinator actor, and the response goes once all
// have answered.
func (c *conn) addPartitionsBatch(ctx actor.Context, r *request, req *kmsg.AddPartitionsToTxnRequest) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	resp.Transactions = make([]kmsg.AddPartitionsToTxnResponseTransaction, len(req.Transactions))
	var mu sync.Mutex
	pending := 1 // the loop's own, released after it
	root, self := ctx.ActorSystem().Root, ctx.Self()
	finish := func() {
		mu.Lock()
		pending--
		last := pending == 0
		mu.Unlock()
		if last {
			root.Send(self, &asyncDone{seq: r.seq, frame: protocol.AppendResponse(nil, r.hdr, resp)})
		}
	}
	for i, rt := range req.Transactions {
		parts := map[string][]int32{}
		for _, t := range rt.Topics {
			parts[t.Topic] = append(parts[t.Topic], t.Partitions...)
		}
		fill := func(res *txns.AddResult) {
			mu.Lock()
			defer mu.Unlock()
			out := kmsg.NewAddPartitionsToTxnResponseTransaction()
			out.TransactionalID = rt.TransactionalID
			for _, t := range rt.Topics {
				ot := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				ot.Topic = t.Topic
				for _, p := range t.Partitions {
					op := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
					op.Partition = p
					op.ErrorCode = addedCode(res, t.Topic, p)
					ot.Partitions = append(ot.Partitions, op)
				}
				out.Topics = append(out.Topics, ot)
			}
			resp.Transactions[i] = out
		}
		err := txnIDError(rt.TransactionalID)
		if err == nil {
			err = c.b.txns.CoordinatorErr(rt.TransactionalID)
		}
		if err != nil {
			fill(&txns.AddResult{Err: err})
			continue
		}
		mu.Lock()
		pending++
		mu.Unlock()
		op := &txns.AddOp{TransactionalID: rt.TransactionalID, ProducerID: rt.ProducerID, ProducerEpoch: rt.ProducerEpoch,
			Partitions: parts, VerifyOnly: rt.VerifyOnly, Key: req.Key(), Version: req.Version}
		c.b.txns.Route(rt.TransactionalID, txns.NewCall(op, func(v any) {
			fill(v.(*txns.AddResult))
			finish()
		}))
	}
	finish()
}
