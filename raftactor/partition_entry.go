package raftactor

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/storage"
)

// A partition's raft entry is
//
//	[0:8]   the replica's proposal id (CommandHeader)
//	[8:16]  the leader's wall clock at proposal, unix ms
//	[16]    kind: kindBatch or kindDuplicate
//	[17:]   the record batch (kindBatch), or its header (kindDuplicate)
//
// A command may also be kindVerified (EncodeVerifiedProduce): a batch
// whose transaction the coordinator confirmed. Prepare turns it into a
// kindBatch entry, so only the leader ever sees that kind.
//
// A batch is final when proposed: its leader gave it its base offset and
// stamped its epoch (the raft term) into partitionLeaderEpoch (Prepare),
// and every replica writes those bytes into its segment as it persists the
// entry (Persist), which is the only copy on disk: the raft log records
// where they lie (storage.External). The clock is what idempotence expiry
// goes by, so that every replica decides from the log alone.
const (
	kindAt        = CommandHeader + 8
	produceHeader = kindAt + 1

	kindBatch     = 0
	kindDuplicate = 1
	kindVerified  = 2
)

// EncodeVerifiedProduce is EncodeProduce for a transactional batch whose
// partition the transaction coordinator confirmed is in the producer's
// ongoing transaction (KIP-890 part 1: AddPartitionsToTxn, or its
// VerifyOnly form). Only such a command may start a transaction in the
// partition; an unverified one gets INVALID_TXN_STATE.
//
// guard is the partition's TxnGuard read before the coordinator was
// asked (Kafka's verification guard): a marker for the producer prepared
// since then means the answer may describe a transaction that has ended,
// and the batch is refused with NOT_ENOUGH_REPLICAS, which the producer
// retries (asking again) rather than open a transaction nobody would end.
// The guard travels in the clock's place, which Prepare then fills.
func EncodeVerifiedProduce(batch []byte, guard uint64) []byte {
	cmd := EncodeProduce(batch)
	cmd[kindAt] = kindVerified
	binary.BigEndian.PutUint64(cmd[CommandHeader:], guard)
	return cmd
}

// TxnGuard is the value a produce handler reads before it asks the
// transaction coordinator to verify a batch (EncodeVerifiedProduce).
// Safe from any goroutine.
func (p *Partition) TxnGuard() uint64 { return p.guard.Load() }

// staleVerification reports whether a verification read at guard may be
// out of date: taken under an earlier leadership, or before a marker for
// producer pid was prepared.
func (sp *speculation) staleVerification(pid int64, guard uint64) bool {
	return guard < sp.since || sp.markerAt[pid] > guard
}

// persistedBatch is a batch in the segments whose entry is not applied.
type persistedBatch struct {
	index uint64 // raft index
	base  int64  // base offset
}

// speculation is what a ready leader has prepared beyond the applied
// state: the log end offset after its proposals, and the producers they
// changed (copies; the applied table is untouched).
type speculation struct {
	next      int64
	producers map[int64]*producerEntry
	undo      func() // undoes the last Prepare
	// since is TxnGuard's value when this leadership began, markerAt
	// the value each producer's last marker took (staleVerification).
	since    uint64
	markerAt map[int64]uint64
}

// maxGuarded bounds markerAt: past it the map starts again and every
// verification read before is treated as stale (a retry), which costs a
// producer one more round trip, never a wrong answer.
const maxGuarded = 1 << 16

// Lead implements Preparer.
func (p *Partition) Lead(ready bool) {
	p.spec = nil
	if ready {
		p.spec = &speculation{next: p.next, producers: make(map[int64]*producerEntry),
			since: p.guard.Add(1), markerAt: make(map[int64]uint64)}
	}
}

// Prepare implements Preparer: what Kafka's leader does as it appends.
// A duplicate of an applied batch is answered with its offset at once; a
// duplicate of one still in flight becomes a kindDuplicate entry, answered
// once it applies, right after the original; a sequence or epoch error is
// answered at once; any other batch gets the next offsets.
func (p *Partition) Prepare(cmd []byte, term uint64, now time.Time) ([]byte, any, bool) {
	sp := p.spec
	if sp == nil {
		return nil, &ProduceResult{Err: kerr.NotLeaderForPartition}, false
	}
	if len(cmd) < produceHeader+protocol.BatchHeaderSize || (cmd[kindAt] != kindBatch && cmd[kindAt] != kindVerified) {
		return nil, &ProduceResult{Err: kerr.CorruptMessage}, false
	}
	verified := cmd[kindAt] == kindVerified
	guard := binary.BigEndian.Uint64(cmd[CommandHeader:])
	cmd[kindAt] = kindBatch
	batch := cmd[produceHeader:]
	h, err := protocol.ParseBatchHeader(batch)
	if err != nil {
		return nil, &ProduceResult{Err: kerr.InvalidRequest}, false
	}
	clock := max(now.UnixMilli(), p.clock)
	binary.BigEndian.PutUint64(cmd[CommandHeader:], uint64(clock))
	var prev *producerEntry
	var marker *txnMarker
	if h.Control() {
		// Only the broker writes markers (WriteTxnMarkers); a client's
		// control batch never gets here (ValidateProduceBatch).
		if marker, err = parseMarker(batch); err != nil || h.ProducerID < 0 {
			return nil, &ProduceResult{Err: kerr.InvalidRecord}, false
		}
	}
	if h.ProducerID >= 0 {
		prev = sp.producers[h.ProducerID]
		if prev == nil {
			prev = p.producers.m[h.ProducerID]
		}
		if marker == nil && h.BaseSequence >= 0 {
			// The broker's own writes carry no sequence: no idempotence
			// check for them, only the epoch's (prepareTxn).
			off, dup, kerrv := checkProducer(prev, h, clock)
			switch {
			case kerrv != nil:
				return nil, &ProduceResult{Err: kerrv}, false
			case dup && off < p.next:
				return nil, &ProduceResult{BaseOffset: off, LogStartOffset: p.log.View().LogStartOffset()}, false
			case dup:
				cmd[kindAt] = kindDuplicate
				sp.undo = func() {}
				return cmd[:produceHeader+protocol.BatchHeaderSize], nil, true
			}
		}
		if verified && !continuesTxn(prev, h, clock) && sp.staleVerification(h.ProducerID, guard) {
			return nil, &ProduceResult{Err: kerr.NotEnoughReplicas}, false
		}
		if kerrv := prepareTxn(prev, h, marker, verified, clock); kerrv != nil {
			return nil, &ProduceResult{Err: kerrv}, false
		}
		if marker != nil {
			if len(sp.markerAt) >= maxGuarded {
				sp.markerAt, sp.since = make(map[int64]uint64), p.guard.Add(1)
			}
			sp.markerAt[h.ProducerID] = p.guard.Add(1)
		}
	}
	base := sp.next
	protocol.SetBaseOffset(batch, base)
	protocol.SetPartitionLeaderEpoch(batch, int32(term))
	sp.next = base + int64(h.LastOffsetDelta) + 1
	if h.ProducerID < 0 {
		sp.undo = func() { sp.next = base }
		return cmd, nil, true
	}
	had, inSpec := sp.producers[h.ProducerID]
	sp.producers[h.ProducerID] = recordProducer(prev, h, base, clock, true, marker)
	sp.undo = func() {
		sp.next = base
		if inSpec {
			sp.producers[h.ProducerID] = had
		} else {
			delete(sp.producers, h.ProducerID)
		}
	}
	return cmd, nil, true
}

// Unprepare implements Preparer.
func (p *Partition) Unprepare() {
	if sp := p.spec; sp != nil && sp.undo != nil {
		sp.undo()
		sp.undo = nil
	}
}

// Persist implements Persister: every batch entry's bytes go into the
// segments, after the batches of entries a conflicting append replaces
// were cut away, and are fsynced before the raft log records where they
// lie. Entries are whole and final (Prepare), so a follower writes exactly
// the bytes its leader wrote.
func (p *Partition) Persist(ents []*pb.Entry) ([]storage.External, error) {
	first := ents[0].GetIndex()
	for i, b := range p.unapplied {
		if b.index >= first {
			// Raft replaces entries from first on; they were never
			// committed, so never applied nor read.
			if err := p.log.TruncateTo(b.base); err != nil {
				return nil, err
			}
			p.unapplied = p.unapplied[:i]
			break
		}
	}
	var ext []storage.External
	for i, e := range ents {
		if e.GetType() != pb.EntryNormal || len(e.Data) < produceHeader+protocol.BatchHeaderSize || e.Data[kindAt] != kindBatch {
			continue
		}
		batch := e.Data[produceHeader:]
		h, err := protocol.ParseBatchHeader(batch)
		if err != nil {
			return nil, fmt.Errorf("partition %s: entry %d: %w", p.cfg.Dir, e.GetIndex(), err)
		}
		if err := p.log.Append(batch); err != nil {
			return nil, err
		}
		pos := p.log.Position()
		if ext == nil {
			ext = make([]storage.External, len(ents))
		}
		ext[i] = storage.External{Prefix: produceHeader, SegmentBase: pos.SegmentBase, Pos: pos.SegmentSize - int64(len(batch)), Len: len(batch)}
		p.unapplied = append(p.unapplied, persistedBatch{index: e.GetIndex(), base: h.BaseOffset})
	}
	if ext != nil {
		if err := p.log.SyncAppended(); err != nil {
			return nil, err
		}
	}
	return ext, nil
}

// LoadExternal implements Persister: at open, the raft log reads back the
// batches of the entries after the checkpoint, in index order, from the
// segments OpenPartition kept up to the last of them.
func (p *Partition) LoadExternal(index uint64, x storage.External) ([]byte, error) {
	b, err := p.log.ReadAt(x.SegmentBase, x.Pos, x.Len)
	if err != nil {
		return nil, err
	}
	h, err := protocol.ParseBatchHeader(b)
	if err != nil {
		return nil, fmt.Errorf("partition %s: entry %d: %w", p.cfg.Dir, index, err)
	}
	p.unapplied = append(p.unapplied, persistedBatch{index: index, base: h.BaseOffset})
	return b, nil
}

// persistedEnd is where the batches the raft log refers to end: past the
// checkpoint's position when entries after it were persisted.
func persistedEnd(cfg PartitionConfig, durable storage.LogPosition) (storage.LogPosition, error) {
	x, ok, err := storage.LastExternal(cfg.DB, cfg.Group)
	if err != nil || !ok {
		return durable, err
	}
	end := storage.LogPosition{SegmentBase: x.SegmentBase, SegmentSize: x.Pos + int64(x.Len), LogStartOffset: durable.LogStartOffset}
	if end.SegmentBase < durable.SegmentBase || (end.SegmentBase == durable.SegmentBase && end.SegmentSize <= durable.SegmentSize) {
		return durable, nil // applied and checkpointed already
	}
	return end, nil
}

// ProduceBatch is the record batch a produce command (EncodeProduce)
// carries, nil when cmd is too short to be one.
func ProduceBatch(cmd []byte) []byte {
	if len(cmd) < produceHeader {
		return nil
	}
	return cmd[produceHeader:]
}
