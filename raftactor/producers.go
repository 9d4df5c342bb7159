package raftactor

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// producerWindow is how many recent batches per producer are remembered
// for duplicate detection: the client keeps at most 5 in flight.
const producerWindow = 5

// producerTable is a partition's idempotent-producer state. It is part of
// the replica's applied state: it changes only at apply, is saved with
// every checkpoint and rebuilt by replaying the raft log after it.
type producerTable struct {
	m map[int64]*producerEntry
}

type producerEntry struct {
	Epoch   int16       `json:"epoch"`
	Batches []batchMeta `json:"batches"` // oldest first
	// LastWrite is the partition clock (see Partition.clock: the leaders'
	// wall clocks as stamped into the log, not the batch's own timestamp,
	// which a producer may set in the past) at the producer's last batch,
	// for expiry (Kafka: producer.id.expiration.ms).
	LastWrite int64 `json:"last_write,omitempty"`
	// LastTimestamp is the max timestamp of the producer's last batch or
	// marker, for DescribeProducers.
	LastTimestamp int64 `json:"last_ts,omitempty"`
	// TxnOpen says the producer has a transaction open here, whose first
	// batch is at TxnFirst: it holds the last stable offset, and a marker
	// ends it (txnstate.go). A producer with an open transaction never
	// expires: forgetting it would release the LSO over uncommitted data.
	TxnOpen  bool  `json:"txn_open,omitempty"`
	TxnFirst int64 `json:"txn_first,omitempty"`
	// CoordEpoch is the transaction coordinator's epoch in the producer's
	// last marker here, -1 before any: a marker from an older coordinator
	// is fenced (Kafka's ProducerStateEntry.coordinatorEpoch).
	CoordEpoch int32 `json:"coord_epoch,omitempty"`
}

// producerExpiry is how long an idle producer's state is kept, Kafka's
// producer.id.expiration.ms default. Without it every producer that ever
// wrote (each client run gets a new id) would stay in every checkpoint.
const producerExpiry = 24 * time.Hour

type batchMeta struct {
	FirstSeq   int32 `json:"first_seq"`
	LastSeq    int32 `json:"last_seq"`
	BaseOffset int64 `json:"base_offset"`
}

func newProducerTable() *producerTable { return &producerTable{m: make(map[int64]*producerEntry)} }

// check decides what happens to an idempotent batch, as Kafka's
// ProducerAppendInfo does: a duplicate of one of the last batches is
// answered with its original offset and not written again; a stale epoch
// is INVALID_PRODUCER_EPOCH; a gap is OUT_OF_ORDER_SEQUENCE_NUMBER. A
// producer we hold no state for may start at any sequence (its state may
// have been lost to retention, as Kafka allows).
//
// A producer idle for producerExpiry at clock counts as unknown whether or
// not a sweep removed it yet: the decision depends on the log alone, so
// every replica takes the same one.
func (t *producerTable) check(h protocol.BatchHeader, clock int64) (dupOffset int64, dup bool, err *kerr.Error) {
	return checkProducer(t.m[h.ProducerID], h, clock)
}

// checkProducer is check against the producer's entry e (nil: none).
func checkProducer(e *producerEntry, h protocol.BatchHeader, clock int64) (dupOffset int64, dup bool, err *kerr.Error) {
	if e == nil || expired(e, clock) {
		return 0, false, nil
	}
	switch {
	case h.ProducerEpoch < e.Epoch:
		return 0, false, kerr.InvalidProducerEpoch
	case h.ProducerEpoch > e.Epoch:
		if h.BaseSequence != 0 {
			return 0, false, kerr.OutOfOrderSequenceNumber
		}
		return 0, false, nil
	}
	for _, b := range e.Batches {
		if b.FirstSeq == h.BaseSequence && b.LastSeq == h.LastSequence() {
			return b.BaseOffset, true, nil
		}
	}
	n := len(e.Batches)
	if n > 0 && h.BaseSequence != nextSeq(e.Batches[n-1].LastSeq) {
		return 0, false, kerr.OutOfOrderSequenceNumber
	}
	if n == 0 && h.BaseSequence != 0 {
		// The producer is known with no batch at this epoch: a marker set
		// it (the coordinator bumped the epoch, or this partition got only
		// markers). As Kafka's ProducerAppendInfo, the sequences start
		// again at 0.
		return 0, false, kerr.OutOfOrderSequenceNumber
	}
	return 0, false, nil
}

// record remembers a data batch that was written at baseOffset.
func (t *producerTable) record(h protocol.BatchHeader, baseOffset int64, clock int64) {
	t.m[h.ProducerID] = recordProducer(t.m[h.ProducerID], h, baseOffset, clock, false, nil)
}

// recordProducer adds the batch to the producer's entry e (nil: none) and
// returns the entry to keep: e itself, or a new one when e expired; with
// fresh, never e (a leader's speculation must not touch the applied
// table's entries). A new epoch starts the sequence window again but keeps
// the producer's open transaction and coordinator epoch, as Kafka's
// ProducerStateEntry.maybeUpdateProducerEpoch does.
//
// m is the marker a control batch carries (nil for data): it ends the open
// transaction and records the coordinator's epoch. A data batch without a
// sequence (the broker's own write, see protocol.BuildTransactionalBatch)
// adds nothing to the window. A transactional data batch opens the
// producer's transaction at baseOffset unless one is open.
func recordProducer(e *producerEntry, h protocol.BatchHeader, baseOffset, clock int64, fresh bool, m *txnMarker) *producerEntry {
	switch {
	case e == nil || expired(e, clock):
		e = &producerEntry{Epoch: h.ProducerEpoch, CoordEpoch: -1}
	case fresh:
		c := *e
		c.Batches = append(make([]batchMeta, 0, producerWindow+1), e.Batches...)
		e = &c
	}
	if e.Epoch != h.ProducerEpoch {
		e.Epoch = h.ProducerEpoch
		e.Batches = e.Batches[:0]
	}
	e.LastWrite = clock
	e.LastTimestamp = h.MaxTimestamp
	if m != nil {
		e.TxnOpen, e.TxnFirst = false, 0
		e.CoordEpoch = m.coordinatorEpoch
		return e
	}
	if h.BaseSequence >= 0 {
		e.Batches = append(e.Batches, batchMeta{FirstSeq: h.BaseSequence, LastSeq: h.LastSequence(), BaseOffset: baseOffset})
		if len(e.Batches) > producerWindow {
			e.Batches = append(e.Batches[:0], e.Batches[len(e.Batches)-producerWindow:]...)
		}
	}
	if h.Transactional() && !e.TxnOpen {
		e.TxnOpen, e.TxnFirst = true, baseOffset
	}
	return e
}

// expire removes producers idle for producerExpiry at clock, which check
// already treats as unknown: a forgotten producer that writes again is
// accepted at any sequence, as Kafka does.
func (t *producerTable) expire(clock int64) {
	for id, e := range t.m {
		if expired(e, clock) {
			delete(t.m, id)
		}
	}
}

func expired(e *producerEntry, clock int64) bool {
	return !e.TxnOpen && e.LastWrite < clock-producerExpiry.Milliseconds()
}

// nextSeq is the sequence after s; sequences wrap to 0 after MaxInt32.
func nextSeq(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

// snapshot copies the table, for a checkpoint or a raft snapshot taken
// while the replica goes on applying.
func (t *producerTable) snapshot() map[int64]*producerEntry {
	out := make(map[int64]*producerEntry, len(t.m))
	for id, e := range t.m {
		c := *e
		c.Batches = append([]batchMeta(nil), e.Batches...)
		out[id] = &c
	}
	return out
}
