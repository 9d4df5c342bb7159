package txns

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

// initProducerID gives a transactional id its producer id and a new
// epoch, which fences every earlier producer of the id, as Kafka's
// TransactionCoordinator.handleInitProducerId: a new id gets a new
// producer id at epoch 0; a known one at rest gets its epoch bumped (a new
// producer id once the epoch is used up); an open transaction is aborted
// first (its epoch bumped, so the old producer is fenced) and the caller
// told CONCURRENT_TRANSACTIONS, to come back once it is done. A producer
// that names its current id and epoch (KIP-360, v3+) recovers the same
// way; one naming another id, or an epoch from the future, is fenced.
func (a *partition) initProducerID(c *Call, req *kmsg.InitProducerIDRequest) {
	id := *req.TransactionalID
	reply := a.hold(c)
	answer := func(err *kerr.Error, pid int64, epoch int16) {
		if err != nil {
			pid, epoch = -1, -1
		}
		reply(&InitResult{Err: err, ProducerID: pid, ProducerEpoch: epoch})
	}
	t := a.txns[id]
	if t == nil {
		t = &txn{id: id, fresh: true, busy: true, start: -1, lastEpoch: -1}
		a.txns[id] = t
		a.takeProducerID(func(pid int64, err *kerr.Error) {
			forget := func() {
				if a.txns[id] == t {
					delete(a.txns, id)
				}
			}
			if err != nil {
				forget()
				answer(err, 0, 0)
				return
			}
			next := t.next()
			next.pid, next.epoch, next.timeoutMs, next.state, next.updated = pid, 0, req.TransactionTimeoutMillis, stateEmpty, nowMs()
			a.write(&next, func(err *kerr.Error) {
				if err != nil {
					forget()
					answer(err, 0, 0)
					return
				}
				*t = next
				answer(nil, t.pid, t.epoch)
			})
		})
		return
	}
	if t.busy {
		answer(kerr.ConcurrentTransactions, 0, 0)
		return
	}
	if req.ProducerID >= 0 && (req.ProducerID != t.pid || req.ProducerEpoch > t.epoch) {
		answer(fenced(req.Key(), req.Version), 0, 0)
		return
	}
	switch t.state {
	case stateOngoing:
		a.fenceAndAbort(t, req.ProducerID >= 0)
		answer(kerr.ConcurrentTransactions, 0, 0)
		return
	case statePrepareCommit, statePrepareAbort:
		answer(kerr.ConcurrentTransactions, 0, 0)
		return
	}
	// At rest, a producer naming its epoch (KIP-360) must name the
	// current one, or the one its last such call bumped from (a retry
	// that lost its answer: it gets the current epoch again). An older
	// epoch is a fenced producer's: bumping for it would fence the
	// current one (Kafka's prepareIncrementProducerEpoch).
	if req.ProducerID >= 0 && req.ProducerEpoch != t.epoch {
		if t.lastEpoch >= 0 && req.ProducerEpoch == t.lastEpoch {
			answer(nil, t.pid, t.epoch)
		} else {
			answer(fenced(req.Key(), req.Version), 0, 0)
		}
		return
	}
	bump := func(pid int64, epoch int16) {
		next := t.next()
		next.pid, next.epoch, next.timeoutMs = pid, epoch, req.TransactionTimeoutMillis
		next.lastEpoch = -1
		if req.ProducerID >= 0 {
			next.lastEpoch = t.epoch
		}
		next.state, next.parts, next.start, next.updated = stateEmpty, nil, -1, nowMs()
		t.busy = true
		a.write(&next, func(err *kerr.Error) {
			t.busy = false
			if err != nil {
				answer(err, 0, 0)
				return
			}
			*t = next
			answer(nil, t.pid, t.epoch)
		})
	}
	if t.epoch < math.MaxInt16-1 {
		bump(t.pid, t.epoch+1)
		return
	}
	// The epoch is used up: a new producer id starts again at 0.
	t.busy = true
	a.takeProducerID(func(pid int64, err *kerr.Error) {
		t.busy = false
		if err != nil {
			answer(err, 0, 0)
			return
		}
		bump(pid, 0)
	})
}

// checkProducer is the producer check of AddPartitionsToTxn,
// AddOffsetsToTxn and EndTxn: the id must be known with this producer id,
// and the epoch current.
func (a *partition) checkProducer(id string, pid int64, epoch int16, key, version int16) (*txn, *kerr.Error) {
	t := a.txns[id]
	switch {
	case t == nil || t.fresh || t.pid != pid:
		return nil, kerr.InvalidProducerIDMapping
	case t.epoch != epoch:
		return nil, fenced(key, version)
	}
	return t, nil
}

// addPartitions adds partitions to the transaction, opening it if it was
// at rest, or (VerifyOnly) tells which are in it.
func (a *partition) addPartitions(c *Call, op *AddOp) {
	reply := a.hold(c)
	t, err := a.checkProducer(op.TransactionalID, op.ProducerID, op.ProducerEpoch, op.Key, op.Version)
	// A change in flight makes adding wait, not verifying: the
	// partitions in the transaction are those its last record names
	// (Kafka's handleVerifyPartitionsInTransaction skips the pending
	// state too).
	if err == nil && (t.busy && !op.VerifyOnly || t.state == statePrepareCommit || t.state == statePrepareAbort) {
		err = kerr.ConcurrentTransactions
	}
	op.Partitions = a.opPartitions(op)
	if err != nil {
		reply(&AddResult{Err: err})
		return
	}
	res := &AddResult{Partitions: map[string]map[int32]*kerr.Error{}}
	each := func(f func(topic string, p int32) *kerr.Error) {
		for topic, ps := range op.Partitions {
			m := res.Partitions[topic]
			if m == nil {
				m = map[int32]*kerr.Error{}
				res.Partitions[topic] = m
			}
			for _, p := range ps {
				m[p] = f(topic, p)
			}
		}
	}
	if op.VerifyOnly {
		each(func(topic string, p int32) *kerr.Error {
			if t.state == stateOngoing && t.has(topic, p) {
				return nil
			}
			return kerr.InvalidTxnState
		})
		reply(res)
		return
	}
	md := a.co.node.Metadata()
	unknown, all := false, t.state == stateOngoing
	for topic, ps := range op.Partitions {
		mt := md.Topics[topic]
		for _, p := range ps {
			if mt == nil || p < 0 || int(p) >= len(mt.Groups) {
				unknown = true
			}
			all = all && t.has(topic, p)
		}
	}
	switch {
	case unknown:
		// Nothing is added when any partition is unknown, as Kafka.
		each(func(topic string, p int32) *kerr.Error {
			if mt := md.Topics[topic]; mt == nil || p < 0 || int(p) >= len(mt.Groups) {
				return kerr.UnknownTopicOrPartition
			}
			return kerr.OperationNotAttempted
		})
		reply(res)
		return
	case all:
		each(func(string, int32) *kerr.Error { return nil })
		reply(res)
		return
	}
	next := t.next()
	for topic, ps := range op.Partitions {
		for _, p := range ps {
			next.add(topic, p)
		}
	}
	if t.state != stateOngoing {
		next.state, next.start = stateOngoing, nowMs()
	}
	next.updated = nowMs()
	t.busy = true
	a.write(&next, func(err *kerr.Error) {
		t.busy = false
		if err != nil {
			reply(&AddResult{Err: err})
			return
		}
		*t = next
		each(func(string, int32) *kerr.Error { return nil })
		reply(res)
	})
}

// endTxn commits or aborts the open transaction: the Prepare record is
// written and the producer answered, then the markers go out and the
// Complete record follows (Kafka answers after the Prepare record too).
// A retry of an end that completed succeeds; one still writing its
// markers gets CONCURRENT_TRANSACTIONS, as Kafka answers.
func (a *partition) endTxn(c *Call, req *kmsg.EndTxnRequest) {
	reply := a.hold(c)
	t, err := a.checkProducer(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Key(), req.Version)
	if err != nil {
		reply(err)
		return
	}
	commit := req.Commit
	switch {
	case t.busy && (t.state == statePrepareCommit && !commit || t.state == statePrepareAbort && commit):
		reply(kerr.InvalidTxnState)
		return
	case t.busy:
		reply(kerr.ConcurrentTransactions)
		return
	}
	switch t.state {
	case stateCompleteCommit, stateCompleteAbort:
		if (t.state == stateCompleteCommit) == commit {
			reply((*kerr.Error)(nil))
		} else {
			reply(kerr.InvalidTxnState)
		}
		return
	case stateOngoing:
	default:
		reply(kerr.InvalidTxnState) // nothing open: Empty
		return
	}
	next := t.next()
	next.state, next.updated = statePrepareAbort, nowMs()
	if commit {
		next.state = statePrepareCommit
	}
	t.busy = true
	a.write(&next, func(err *kerr.Error) {
		if err != nil {
			t.busy = false
			reply(err)
			return
		}
		*t = next
		t.busy = true
		reply((*kerr.Error)(nil))
		a.sendMarkers(t, commit, t.partitionList())
	})
}

// expire aborts the transactions open longer than their timeout, bumping
// the epoch so that their producer is fenced (Kafka's
// abortTimedOutTransactions).
func (a *partition) expire(now time.Time) {
	for _, t := range a.txns {
		if t.state == stateOngoing && !t.busy && now.UnixMilli()-t.start > int64(t.timeoutMs) {
			a.co.node.Log().Info("aborting a timed-out transaction", "transactional_id", t.id, "producer_id", t.pid, "epoch", t.epoch, "timeout_ms", t.timeoutMs)
			a.fenceAndAbort(t, true)
		}
	}
}

// fenceAndAbort aborts t's open transaction at a bumped epoch: its
// markers carry the new epoch, so the partitions refuse the old
// producer's writes from then on. recoverable lets the producer of the
// fenced epoch come back with InitProducerId naming it (KIP-360/588):
// a producer that asked for the abort itself, or one whose transaction
// timed out, gets the current epoch; a zombie fenced by a new instance
// (an InitProducerId naming no epoch) stays fenced.
func (a *partition) fenceAndAbort(t *txn, recoverable bool) {
	next := t.next()
	// Up to MaxInt16, which no InitProducerId hands out: the producer's
	// retry then gets a new producer id (Kafka's prepareFenceProducerEpoch).
	if next.epoch < math.MaxInt16 {
		next.epoch++
	}
	next.lastEpoch = -1
	if recoverable && next.epoch != t.epoch {
		next.lastEpoch = t.epoch
	}
	next.state, next.updated = statePrepareAbort, nowMs()
	t.busy = true
	a.write(&next, func(err *kerr.Error) {
		if err != nil {
			t.busy = false // the sweep tries again
			return
		}
		*t = next
		t.busy = true
		a.sendMarkers(t, false, t.partitionList())
	})
}

// sendMarkers writes the markers ending t into the partitions of parts,
// again after MarkerRetry for those that failed, then the Complete
// record. A partition whose topic is gone, or that has seen a newer epoch
// of the producer (a later end already went through), counts as done; a
// partition that fenced this coordinator's epoch means another node leads
// the state partition now: this one lets go.
func (a *partition) sendMarkers(t *txn, commit bool, parts map[string][]int32) {
	if len(parts) == 0 {
		a.complete(t, commit)
		return
	}
	post := a.later()
	m := Markers{ProducerID: t.pid, ProducerEpoch: t.epoch, Commit: commit, CoordinatorEpoch: a.term, Partitions: parts}
	a.co.node.WriteMarkers(m, func(res map[string]map[int32]*kerr.Error) {
		post(func() {
			retry := map[string][]int32{}
			for topic, ps := range parts {
				for _, p := range ps {
					err, ok := res[topic][p]
					switch {
					case !ok:
						retry[topic] = append(retry[topic], p)
					case err == nil, err == kerr.UnknownTopicOrPartition, err == kerr.InvalidProducerEpoch:
					case err == kerr.TransactionCoordinatorFenced:
						a.co.node.Log().Info("transaction markers fenced: another coordinator took over", "partition", a.p, "transactional_id", t.id)
						a.unload()
						return
					default:
						retry[topic] = append(retry[topic], p)
					}
				}
			}
			if len(retry) == 0 {
				a.complete(t, commit)
				return
			}
			a.after(a.co.cfg.MarkerRetry, func() { a.sendMarkers(t, commit, retry) })
		})
	})
}

// complete writes the Complete record once every marker is written.
func (a *partition) complete(t *txn, commit bool) {
	if a.openNext(t, commit) {
		return
	}
	next := t.next()
	next.state, next.parts, next.start, next.updated = stateCompleteAbort, nil, -1, nowMs()
	if commit {
		next.state = stateCompleteCommit
	}
	a.write(&next, func(err *kerr.Error) {
		if err != nil {
			a.after(a.co.cfg.MarkerRetry, func() { a.complete(t, commit) })
			return
		}
		*t = next
	})
}

// openNext, when the first call waiting for t is its producer adding
// the partitions of its next transaction, writes one Ongoing record
// naming them in place of the Complete record: every marker of the
// transaction ending is written, so the Complete record would say
// nothing the Ongoing one does not, and a producer running transactions
// back to back starts each one a write sooner (Kafka writes both
// records; its log then reads PrepareCommit, Ongoing, which a reload
// takes as it takes any last record). It reports whether it did.
func (a *partition) openNext(t *txn, commit bool) bool {
	cs := a.parked[t.id]
	if len(cs) == 0 {
		return false
	}
	op, ok := cs[0].op.(*AddOp)
	if !ok || op.VerifyOnly || op.ProducerID != t.pid || op.ProducerEpoch != t.epoch {
		return false
	}
	parts := a.opPartitions(op)
	md := a.co.node.Metadata()
	for topic, ps := range parts {
		mt := md.Topics[topic]
		for _, p := range ps {
			if mt == nil || p < 0 || int(p) >= len(mt.Groups) {
				return false // addPartitions answers it, after the Complete record
			}
		}
	}
	c := cs[0]
	if a.parked[t.id] = cs[1:]; len(a.parked[t.id]) == 0 {
		delete(a.parked, t.id)
	}
	reply := a.hold(c)
	next := t.next()
	next.parts = nil
	for topic, ps := range parts {
		for _, p := range ps {
			next.add(topic, p)
		}
	}
	next.state, next.start, next.updated = stateOngoing, nowMs(), nowMs()
	a.write(&next, func(err *kerr.Error) {
		if err != nil {
			reply(&AddResult{Err: err})
			a.after(a.co.cfg.MarkerRetry, func() { a.complete(t, commit) })
			return
		}
		*t = next
		reply(addedAll(parts))
	})
	return true
}

// opPartitions is what op adds: its partitions, or its group's offsets
// partition (AddOffsetsToTxn).
func (a *partition) opPartitions(op *AddOp) map[string][]int32 {
	if op.Group != "" {
		return map[string][]int32{groups.OffsetsTopic: {a.co.node.OffsetsPartition(op.Group)}}
	}
	return op.Partitions
}

// addedAll answers an add of parts that succeeded.
func addedAll(parts map[string][]int32) *AddResult {
	res := &AddResult{Partitions: map[string]map[int32]*kerr.Error{}}
	for topic, ps := range parts {
		m := map[int32]*kerr.Error{}
		for _, p := range ps {
			m[p] = nil
		}
		res.Partitions[topic] = m
	}
	return res
}
