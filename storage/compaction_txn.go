package storage

import (
	"fmt"
	"math"
	"slices"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// What compaction knows of the whole published log, transactions included
// (__consumer_offsets holds TxnOffsetCommit's transactional batches and
// their markers). A record of a transaction counts only once the log
// holds its commit marker: a record of an aborted transaction, or of one
// still open, never supersedes a committed value, so compaction cannot
// lose an offset that the transaction's abort leaves in force. Aborted
// records are removed. Among live records the highest offset wins,
// whichever committed last, which is also what the group store reads
// (actors/groups store_txn.go), so a compacted log loads the same state.
//
// Nothing at or above the first offset of a transaction still open is
// compacted (Kafka cleans only below the last stable offset): a tombstone
// written after an open transaction's record drops that pending offset,
// and removing the tombstone, superseded as it may be, would bring the
// pending offset back on the next load.
//
// Markers: a commit marker goes once every record of its transaction is
// removed (nothing is left for it to commit; a replay of the log sees the
// producer's next transaction start afresh either way). An abort marker
// is kept for good: the partition's aborted-transaction index, which
// compaction cannot edit, still names the transaction, and a
// read_committed reader lets go of a producer's aborted range only at its
// marker. A control batch that is not a readable marker ends nothing and
// is kept.

type txnOutcome int8

const (
	txnOpen txnOutcome = iota // no marker in the published log yet
	txnCommitted
	txnAborted
)

type compactIndex struct {
	latest map[string]int64 // key -> offset of its latest live record
	// txns is the outcome of the transaction each transactional data
	// batch (by base offset) belongs to; open when absent.
	txns map[int64]txnOutcome
	// dropMarkers are the commit markers (by offset) whose transaction has
	// nothing left once this compaction is done.
	dropMarkers map[int64]bool
	// firstOpen is the first offset of the earliest transaction still
	// open, MaxInt64 when none: compaction stays below it.
	firstOpen int64
}

// keep reports whether a record of an uncompressed data batch stays.
func (x *compactIndex) keep(h protocol.BatchHeader, off int64, key []byte) bool {
	if h.Transactional() {
		switch x.txns[h.BaseOffset] {
		case txnAborted:
			return false
		case txnOpen:
			return true
		}
	}
	return key == nil || x.latest[string(key)] <= off
}

// txnRecord is a record of a transaction whose marker is not read yet.
type txnRecord struct {
	off       int64
	key       []byte // nil for a nil key
	removable bool   // in an uncompressed batch: compaction may drop it
}

// openTxn is a producer's transaction as the scan has read it so far.
type openTxn struct {
	batches []int64 // base offsets of its data batches
	records []txnRecord
}

// buildIndex reads every published batch once, in offset order.
func (l *PartitionLog) buildIndex() (*compactIndex, error) {
	x := &compactIndex{latest: map[string]int64{}, txns: map[int64]txnOutcome{}, dropMarkers: map[int64]bool{}, firstOpen: math.MaxInt64}
	live := func(off int64, key []byte) {
		if key != nil {
			if cur, ok := x.latest[string(key)]; !ok || off > cur {
				x.latest[string(key)] = off
			}
		}
	}
	open := map[int64]*openTxn{} // producer id -> its open transaction
	var commits []*openTxn       // committed transactions, by marker
	var commitAt []int64         // their markers' offsets
	// Only what readers see: an unpublished batch may still be cut by
	// raft (TruncateTo), so it must not supersede anything, and its marker
	// does not end a transaction yet.
	n := l.publishedSealed()
	tail := &segment{base: l.pub.seg.base, log: l.pub.seg.log, size: l.pub.size}
	for _, s := range append(slices.Clip(l.sealed[:n]), tail) {
		err := scanBatches(s, func(b []byte, h protocol.BatchHeader) error {
			if h.Control() {
				commit, _, err := protocol.ControlMarker(b)
				if err != nil || !h.Transactional() {
					return nil // not a marker: ends nothing
				}
				t := open[h.ProducerID]
				delete(open, h.ProducerID)
				if t == nil {
					t = &openTxn{}
				}
				outcome := txnAborted
				if commit {
					outcome = txnCommitted
					for _, r := range t.records {
						live(r.off, r.key)
					}
					commits = append(commits, t)
					commitAt = append(commitAt, h.BaseOffset)
				}
				for _, base := range t.batches {
					x.txns[base] = outcome
				}
				return nil
			}
			recs, err := batchRecords(b, h)
			if err != nil {
				return err
			}
			if !h.Transactional() {
				for _, r := range recs {
					live(r.off, r.key)
				}
				return nil
			}
			if len(recs) == 0 {
				return nil // holds nothing: opens no transaction
			}
			t := open[h.ProducerID]
			if t == nil {
				t = &openTxn{}
				open[h.ProducerID] = t
			}
			t.batches = append(t.batches, h.BaseOffset)
			uncompressed := h.Codec() == protocol.CodecNone
			for _, r := range recs {
				t.records = append(t.records, txnRecord{off: r.off, key: r.key, removable: uncompressed})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("segment %020d: %w", s.base, err)
		}
	}
	for _, t := range open {
		x.firstOpen = min(x.firstOpen, t.batches[0])
	}
	// Only now is every key's latest offset known.
	for i, t := range commits {
		empty := true
		for _, r := range t.records {
			if !r.removable || r.key == nil || x.latest[string(r.key)] <= r.off {
				empty = false
				break
			}
		}
		if empty {
			x.dropMarkers[commitAt[i]] = true
		}
	}
	return x, nil
}

// keyedRecord is a record's offset and key (nil for a nil key).
type keyedRecord struct {
	off int64
	key []byte
}

// batchRecords lists a data batch's records, compressed ones included.
func batchRecords(b []byte, h protocol.BatchHeader) ([]keyedRecord, error) {
	if h.Codec() == protocol.CodecNone {
		raw, err := parseRawRecords(b, h)
		if err != nil {
			return nil, err
		}
		out := make([]keyedRecord, len(raw))
		for i, r := range raw {
			out[i] = keyedRecord{r.offset, r.key}
		}
		return out, nil
	}
	recs, err := protocol.Records(b)
	if err != nil {
		return nil, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	out := make([]keyedRecord, len(recs))
	for i, r := range recs {
		out[i] = keyedRecord{r.Offset, r.Key}
	}
	return out, nil
}
