package raftactor

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// A partition's transaction state, as Kafka's ProducerStateManager and
// transaction index keep it: each producer's open transaction (in its
// producerEntry), the aborted-transaction index, and from them the last
// stable offset (LSO). All of it is applied state: Apply changes it from
// what the entries say, the checkpoint and snapshots carry it, and replay
// of the entries after a checkpoint rebuilds the rest. The leader decides
// at Prepare whether a batch may be written (prepareTxn).

// AbortedTxn is one aborted transaction of a producer in this partition:
// its data lies in [FirstOffset, LastOffset), LastOffset being the abort
// marker's offset. A read_committed consumer drops that producer's
// batches from FirstOffset up to the marker.
type AbortedTxn struct {
	ProducerID  int64 `json:"pid"`
	FirstOffset int64 `json:"first"`
	LastOffset  int64 `json:"last"`
}

// OpenTxn is a producer's transaction open in the partition.
type OpenTxn struct {
	Epoch       int16
	FirstOffset int64
}

// TxnView is the transaction state readers on other goroutines see, as
// of the last Applied; immutable.
type TxnView struct {
	// FirstOpen is the first offset of the oldest open transaction, -1
	// when none is open.
	FirstOpen int64
	// Open holds every producer with an open transaction.
	Open map[int64]OpenTxn
	// Aborted is the aborted-transaction index, in marker order (hence by
	// LastOffset).
	Aborted []AbortedTxn
}

var emptyTxnView = &TxnView{FirstOpen: -1}

// LastStable is the LSO for a read view whose high watermark is hw: the
// first offset of the oldest open transaction, or hw when none is open
// below it. Take the read view before the TxnView: the partition
// publishes its TxnView first, so the one found is at least as new as
// the view, and a newer one only ever has a later LSO (clamped to hw).
func (v *TxnView) LastStable(hw int64) int64 {
	if v.FirstOpen >= 0 && v.FirstOpen < hw {
		return v.FirstOpen
	}
	return hw
}

// OpenFor reports whether producer pid has a transaction open here at
// epoch: its next transactional batch needs no verification.
func (v *TxnView) OpenFor(pid int64, epoch int16) bool {
	t, ok := v.Open[pid]
	return ok && t.Epoch == epoch
}

// AbortedIn returns the aborted transactions a read_committed fetch of
// [from, upper) must report, as Kafka's collectAbortedTransactions: those
// whose marker is at or after from and whose data starts before upper.
func (v *TxnView) AbortedIn(from, upper int64) []AbortedTxn {
	i := sort.Search(len(v.Aborted), func(i int) bool { return v.Aborted[i].LastOffset >= from })
	var out []AbortedTxn
	for _, a := range v.Aborted[i:] {
		if a.FirstOffset < upper {
			out = append(out, a)
		}
	}
	return out
}

// Txns is the partition's published transaction state; safe from any
// goroutine.
func (p *Partition) Txns() *TxnView {
	if v := p.pubTxns.Load(); v != nil {
		return v
	}
	return emptyTxnView
}

// publishTxns publishes the transaction state, if it changed since the
// last time. It runs before the read view is published (Applied), so
// that a reader taking the view and then the TxnView never meets data
// of a transaction its TxnView does not know about.
func (p *Partition) publishTxns(force bool) {
	if !p.txnDirty && !force {
		return
	}
	p.txnDirty = false
	v := &TxnView{FirstOpen: -1, Aborted: p.aborted[:len(p.aborted):len(p.aborted)]}
	for id, e := range p.producers.m {
		if !e.TxnOpen {
			continue
		}
		if v.Open == nil {
			v.Open = make(map[int64]OpenTxn)
		}
		v.Open[id] = OpenTxn{Epoch: e.Epoch, FirstOffset: e.TxnFirst}
		if v.FirstOpen < 0 || e.TxnFirst < v.FirstOpen {
			v.FirstOpen = e.TxnFirst
		}
	}
	p.pubTxns.Store(v)
}

// pruneAborted drops the index entries whose marker lies below the log
// start offset (retention deleted their segments): no fetch can meet
// them. Readers may hold the old slice, so a new one is made.
func (p *Partition) pruneAborted(logStart int64) {
	i := sort.Search(len(p.aborted), func(i int) bool { return p.aborted[i].LastOffset >= logStart })
	if i == 0 {
		return
	}
	p.aborted = append([]AbortedTxn(nil), p.aborted[i:]...)
	p.txnDirty = true
}

// txnMarker is what a control batch says.
type txnMarker struct {
	commit           bool
	coordinatorEpoch int32
}

func parseMarker(batch []byte) (*txnMarker, error) {
	commit, ce, err := protocol.ControlMarker(batch)
	if err != nil {
		return nil, err
	}
	return &txnMarker{commit: commit, coordinatorEpoch: ce}, nil
}

// prepareTxn is the leader's transaction check of a batch from producer
// prev (nil: unknown) that the idempotence check let through (not a
// duplicate), as Kafka's UnifiedLog and ProducerAppendInfo:
//   - a marker with an older producer epoch is INVALID_PRODUCER_EPOCH, one
//     from an older coordinator TRANSACTION_COORDINATOR_FENCED; a newer
//     producer epoch is the coordinator's bump and is taken;
//   - a broker's own data batch (no sequence) has only the epoch checked;
//   - a transactional batch that starts a transaction (none open for the
//     producer at its epoch) must have been verified with the coordinator
//     (KIP-890 part 1), or it is INVALID_TXN_STATE: that is what keeps a
//     late write from opening a transaction nobody will ever end;
//   - a non-transactional batch while the producer has a transaction open
//     is INVALID_TXN_STATE.
//
// continuesTxn reports whether transactional batch h continues the
// producer's open transaction at its epoch (no verification needed).
func continuesTxn(prev *producerEntry, h protocol.BatchHeader, clock int64) bool {
	return prev != nil && !expired(prev, clock) && prev.TxnOpen && prev.Epoch == h.ProducerEpoch
}

func prepareTxn(prev *producerEntry, h protocol.BatchHeader, m *txnMarker, verified bool, clock int64) *kerr.Error {
	if prev != nil && expired(prev, clock) {
		prev = nil
	}
	if m != nil || h.BaseSequence < 0 {
		switch {
		case prev == nil:
			return nil
		case h.ProducerEpoch < prev.Epoch:
			return kerr.InvalidProducerEpoch
		case m != nil && m.coordinatorEpoch < prev.CoordEpoch:
			return kerr.TransactionCoordinatorFenced
		}
		if m != nil || h.Transactional() {
			return nil
		}
	}
	open := prev != nil && prev.TxnOpen
	switch {
	case !h.Transactional() && open:
		return kerr.InvalidTxnState
	case !h.Transactional():
		return nil
	case open && prev.Epoch == h.ProducerEpoch:
		return nil // continues the open transaction
	case h.BaseSequence < 0 || verified:
		return nil
	}
	return kerr.InvalidTxnState
}

// applyTxn records in the applied state what batch h, written at base,
// does to producer pid's transaction (Apply, identically on every
// replica): it updates the producer's entry and, for an abort marker
// ending a transaction that wrote data here, adds an index entry. A
// marker for a producer without an open transaction changes no index.
func (p *Partition) applyTxn(h protocol.BatchHeader, payload []byte, base int64) {
	var m *txnMarker
	if h.Control() {
		var err error
		if m, err = parseMarker(payload); err != nil {
			m = &txnMarker{coordinatorEpoch: -1} // Prepare checked it; never here
		}
	}
	prev := p.producers.m[h.ProducerID]
	var was OpenTxn
	wasOpen := prev != nil && prev.TxnOpen
	if wasOpen {
		was = OpenTxn{Epoch: prev.Epoch, FirstOffset: prev.TxnFirst}
	}
	e := recordProducer(prev, h, base, p.clock, false, m)
	p.producers.m[h.ProducerID] = e
	if m != nil && wasOpen && !m.commit {
		p.aborted = append(p.aborted, AbortedTxn{ProducerID: h.ProducerID, FirstOffset: was.FirstOffset, LastOffset: base})
	}
	if wasOpen != e.TxnOpen || (e.TxnOpen && was != (OpenTxn{Epoch: e.Epoch, FirstOffset: e.TxnFirst})) || (m != nil && wasOpen) {
		p.txnDirty = true
	}
}

// ProducerState is one producer's state in a partition, as
// DescribeProducers reports it.
type ProducerState struct {
	ProducerID       int64
	Epoch            int16
	LastSequence     int32 // -1: none
	LastTimestamp    int64 // -1: none
	CoordinatorEpoch int32 // -1: no marker yet
	TxnStartOffset   int64 // -1: no open transaction
}

// Producers lists the partition's active producers (applied state). Call
// it on the replica's goroutine only (Inspect): the table changes at
// every apply.
func (p *Partition) Producers() []ProducerState {
	out := make([]ProducerState, 0, len(p.producers.m))
	for id, e := range p.producers.m {
		if expired(e, p.clock) {
			continue
		}
		s := ProducerState{ProducerID: id, Epoch: e.Epoch, LastSequence: -1, LastTimestamp: -1, CoordinatorEpoch: e.CoordEpoch, TxnStartOffset: -1}
		if n := len(e.Batches); n > 0 {
			s.LastSequence = e.Batches[n-1].LastSeq
		}
		if e.LastTimestamp > 0 {
			s.LastTimestamp = e.LastTimestamp
		}
		if e.TxnOpen {
			s.TxnStartOffset = e.TxnFirst
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}
