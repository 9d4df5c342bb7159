package actors

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/txns"
)

// verifyTxnPartitions asks the transaction coordinator of txnID whether
// each of parts is in producer pid's open transaction at epoch, before a
// partition leader takes the transaction's first batch (KIP-890 part 1:
// a batch the coordinator does not know of would hang the partition's
// last stable offset forever). The coordinator is this node's own or a
// peer's, asked with AddPartitionsToTxn v4+ VerifyOnly as Kafka's brokers
// do. done gets one error per partition (nil: in the transaction), on any
// goroutine. A coordinator that cannot answer now gives the producer
// NOT_ENOUGH_REPLICAS, which it retries (Kafka maps them the same way).
func (b *Broker) verifyTxnPartitions(txnID string, pid int64, epoch int16, parts map[string][]int32, done func(map[string]map[int32]*kerr.Error)) {
	all := func(err *kerr.Error) map[string]map[int32]*kerr.Error {
		out := map[string]map[int32]*kerr.Error{}
		for topic, ps := range parts {
			out[topic] = map[int32]*kerr.Error{}
			for _, p := range ps {
				out[topic][p] = err
			}
		}
		return out
	}
	finish := func(res *txns.AddResult) {
		if res.Err != nil {
			done(all(produceVerifyError(res.Err)))
			return
		}
		out := all(kerr.InvalidTxnState)
		for topic, ps := range res.Partitions {
			for p, err := range ps {
				if _, ok := out[topic][p]; ok {
					out[topic][p] = produceVerifyError(err)
				}
			}
		}
		done(out)
	}
	node, ok := b.txnCoordinatorOf(txnID)
	if !ok {
		b.log.Debug("transaction verification: no coordinator known", "transactional_id", txnID)
		done(all(kerr.NotEnoughReplicas))
		return
	}
	op := &txns.AddOp{TransactionalID: txnID, ProducerID: pid, ProducerEpoch: epoch, Partitions: parts,
		VerifyOnly: true, Key: kmsg.AddPartitionsToTxn.Int16(), Version: 4}
	if node == b.cfg.NodeID {
		if err := b.txns.CoordinatorErr(txnID); err != nil {
			finish(&txns.AddResult{Err: err})
			return
		}
		b.txns.Route(txnID, txns.NewCall(op, func(v any) { finish(v.(*txns.AddResult)) }))
		return
	}
	go func() {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		rt := kmsg.NewAddPartitionsToTxnRequestTransaction()
		rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, rt.VerifyOnly = txnID, pid, epoch, true
		for topic, ps := range parts {
			t := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
			t.Topic, t.Partitions = topic, ps
			rt.Topics = append(rt.Topics, t)
		}
		req.Transactions = append(req.Transactions, rt)
		kr, err := b.inter.request(node, req)
		resp, _ := kr.(*kmsg.AddPartitionsToTxnResponse)
		if err != nil || resp == nil {
			b.log.Debug("transaction verification: coordinator did not answer", "transactional_id", txnID, "node", node, "err", err)
			finish(&txns.AddResult{Err: kerr.CoordinatorNotAvailable})
			return
		}
		if resp.ErrorCode != 0 {
			finish(&txns.AddResult{Err: errorForCode(resp.ErrorCode)})
			return
		}
		res := &txns.AddResult{Partitions: map[string]map[int32]*kerr.Error{}}
		for _, tr := range resp.Transactions {
			for _, tt := range tr.Topics {
				m := res.Partitions[tt.Topic]
				if m == nil {
					m = map[int32]*kerr.Error{}
					res.Partitions[tt.Topic] = m
				}
				for _, tp := range tt.Partitions {
					m[tp.Partition] = errorForCode(tp.ErrorCode)
				}
			}
		}
		finish(res)
	}()
}

// produceVerifyError is what a producer is told when the check with its
// coordinator failed: retriable coordinator trouble becomes
// NOT_ENOUGH_REPLICAS, a fenced epoch INVALID_PRODUCER_EPOCH (Produce's
// own code for it), the rest as the coordinator said.
func produceVerifyError(err *kerr.Error) *kerr.Error {
	switch err {
	case nil:
		return nil
	case kerr.NotCoordinator, kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress, kerr.ConcurrentTransactions:
		return kerr.NotEnoughReplicas
	case kerr.ProducerFenced:
		return kerr.InvalidProducerEpoch
	}
	return err
}
