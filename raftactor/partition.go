package raftactor

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/storage"
)

// EncodeProduce returns the command that appends batch to a partition: the
// replica's header, room for the leader's clock, a kind byte and the batch
// (partition_entry.go).
func EncodeProduce(batch []byte) []byte {
	cmd := NewCommand(produceHeader - CommandHeader + len(batch))
	cmd[kindAt] = kindBatch
	copy(cmd[produceHeader:], batch)
	return cmd
}

// ProduceResult is what applying a produce command returns to the
// proposer: the batch's base offset, or a Kafka error code.
type ProduceResult struct {
	BaseOffset     int64
	LogStartOffset int64
	Err            *kerr.Error
}

// PartitionConfig opens one partition's state machine.
type PartitionConfig struct {
	Group uint64
	Dir   string // <data>/partitions/<topic>-<partition>
	DB    *storage.DB
	Log   storage.LogOptions
	// CheckpointBytes asks for a checkpoint once this much has been applied
	// since the last one, keeping the raft log (and memory) short.
	CheckpointBytes int64
	// Observer, when set, sees every batch of the log in offset order: all
	// stored batches when the partition opens, then each one as it is
	// applied. Internal topics (__consumer_offsets) materialize their state
	// through it.
	Observer BatchObserver
	// Retention, when set, deletes old sealed segments (a topic whose
	// cleanup.policy includes delete); nil keeps everything.
	Retention *RetentionConfig
	// Compaction, when set, compacts sealed segments (a topic whose
	// cleanup.policy includes compact); nil never compacts.
	Compaction *CompactionConfig
}

// CompactionConfig is a topic's log compaction. Every CheckEvery the
// partition compacts the sealed segments recorded durably by a synced
// checkpoint when at least MinDirtyRatio of their records are superseded.
type CompactionConfig struct {
	CheckEvery    time.Duration // default 10 min
	MinDirtyRatio float64       // min.cleanable.dirty.ratio; default 0.5 when 0
}

// DefaultCompactionCheck is how often a partition considers compaction.
const DefaultCompactionCheck = 10 * time.Minute

// DefaultMinDirtyRatio is Kafka's min.cleanable.dirty.ratio default.
const DefaultMinDirtyRatio = 0.5

// RetentionConfig is a topic's delete retention. Segments are checked every
// CheckEvery, and also right after a segment rolled when Bytes is set, so a
// size limit holds within a tick or so of being passed.
type RetentionConfig struct {
	Ms         int64         // retention.ms; -1 keeps forever
	Bytes      int64         // retention.bytes; -1 is unlimited
	CheckEvery time.Duration // default 30 s
}

// DefaultRetentionCheck is how often a partition checks time retention.
const DefaultRetentionCheck = 30 * time.Second

// BatchObserver is told of every batch a partition holds, with its final
// offsets, on the replica's goroutine (or the opener's, at open).
type BatchObserver interface {
	ObserveBatch(batch []byte)
}

// Partition is a partition's state machine: the segment log, the producer
// table and the leader-epoch history. Apply runs on the replica actor;
// readers use the published views (View, Epochs).
type Partition struct {
	cfg       PartitionConfig
	log       *storage.PartitionLog
	producers *producerTable
	epochs    []EpochStart
	sinceCp   int64

	lastRetention time.Time // last retention check
	retentionSegs int       // segment count after it

	lastCompaction time.Time // last compaction check
	compactedEnd   int64     // NextOffset when a compaction last saw every sealed segment
	// durableBase is the SegmentBase of the last position recorded by a
	// synced checkpoint since open: segments below it are never re-appended
	// from the raft log, so compaction may rewrite them. syncForCompaction
	// asks the next checkpoint to be synced so that it moves up.
	durableBase       int64
	syncForCompaction bool

	// next is the offset after the last applied batch; unapplied are the
	// batches persisted into the segments and not applied yet, in raft
	// index order; spec is what a ready leader prepared (partition_entry.go).
	next       int64
	unapplied  []persistedBatch
	spec       *speculation
	publishErr error
	// guard counts leaderships and prepared markers: TxnGuard.
	guard atomic.Uint64

	pubEpochs atomic.Pointer[[]EpochStart]
	// aborted is the aborted-transaction index (txnstate.go), in marker
	// order; txnDirty says the transaction state changed since pubTxns
	// was published.
	aborted  []AbortedTxn
	txnDirty bool
	pubTxns  atomic.Pointer[TxnView]
	// clock is the latest leader's wall clock carried by an applied entry
	// (Prepare), in ms: what idempotence expiry goes by, so every replica
	// keeps the same producer state from the log alone.
	clock     int64
	restoring *stagedPartition // between Restore and Installed
	// pubLog is log for readers on other goroutines: a snapshot's install
	// replaces the log.
	pubLog atomic.Pointer[storage.PartitionLog]
}

// EpochStart is the first offset written in a leader epoch.
type EpochStart struct {
	Epoch       int32 `json:"epoch"`
	StartOffset int64 `json:"start_offset"`
}

// partitionCheckpoint is the durable record beside the trimmed raft log.
type partitionCheckpoint struct {
	Index     uint64                   `json:"index"`
	Position  storage.LogPosition      `json:"position"`
	Producers map[int64]*producerEntry `json:"producers"`
	Epochs    []EpochStart             `json:"epochs"`
	Clock     int64                    `json:"clock,omitempty"`
	// Aborted is the aborted-transaction index; the open transactions
	// are in Producers.
	Aborted []AbortedTxn `json:"aborted,omitempty"`
}

// OpenPartition loads the last checkpoint and opens the segments at its
// durable position; the raft log replays what came after. It returns the
// applied index the replica starts from.
func OpenPartition(cfg PartitionConfig) (*Partition, uint64, error) {
	var cp partitionCheckpoint
	v, err := cfg.DB.Get(storage.GroupMetaKey(cfg.Group, "checkpoint"))
	switch {
	case err == nil:
		if err := json.Unmarshal(v, &cp); err != nil {
			return nil, 0, fmt.Errorf("partition %s: checkpoint: %w", cfg.Dir, err)
		}
	case !errors.Is(err, storage.ErrNotFound):
		return nil, 0, err
	}
	if err := finishRestore(cfg); err != nil {
		return nil, 0, fmt.Errorf("partition %s: finish snapshot install: %w", cfg.Dir, err)
	}
	if err := storage.RemoveCompactionLeftovers(cfg.Dir); err != nil {
		return nil, 0, fmt.Errorf("partition %s: %w", cfg.Dir, err)
	}
	end, err := persistedEnd(cfg, cp.Position)
	if err != nil {
		return nil, 0, err
	}
	l, err := storage.OpenPartitionLogAt(cfg.Dir, cfg.Log, cp.Position, end)
	if err != nil {
		return nil, 0, err
	}
	p := &Partition{cfg: cfg, log: l, producers: newProducerTable(), epochs: cp.Epochs, clock: cp.Clock, next: cp.Position.NextOffset, aborted: cp.Aborted}
	if cp.Producers != nil {
		p.producers.m = cp.Producers
	}
	p.pruneAborted(l.View().LogStartOffset())
	p.publishTxns(true)
	p.pubLog.Store(l)
	p.publishEpochs()
	if cfg.Observer != nil {
		if err := replayLog(l.View(), cfg.Observer); err != nil {
			l.Close()
			return nil, 0, fmt.Errorf("partition %s: replay: %w", cfg.Dir, err)
		}
	}
	if p.cfg.CheckpointBytes <= 0 {
		p.cfg.CheckpointBytes = 8 << 20
	}
	if r := p.cfg.Retention; r != nil && r.CheckEvery <= 0 {
		rc := *r
		rc.CheckEvery = DefaultRetentionCheck
		p.cfg.Retention = &rc
	}
	if c := p.cfg.Compaction; c != nil {
		cc := *c
		if cc.CheckEvery <= 0 {
			cc.CheckEvery = DefaultCompactionCheck
		}
		if cc.MinDirtyRatio <= 0 {
			cc.MinDirtyRatio = DefaultMinDirtyRatio
		}
		p.cfg.Compaction = &cc
		p.compactedEnd = -1
	}
	return p, cp.Index, nil
}

// View is the partition's latest read view; safe from any goroutine.
func (p *Partition) View() *storage.ReadView { return p.pubLog.Load().View() }

// Epochs is the leader-epoch history; safe from any goroutine.
func (p *Partition) Epochs() []EpochStart {
	if e := p.pubEpochs.Load(); e != nil {
		return *e
	}
	return nil
}

// Apply implements StateMachine. data is the entry after the replica's
// header: the leader's clock, the kind, the payload. A batch's offsets are
// final (Prepare) and its bytes already in the segment (Persist): apply
// records what it says and makes it visible.
func (p *Partition) Apply(index, term uint64, data []byte) any {
	if p.publishErr != nil {
		return Fatal{p.publishErr}
	}
	if len(data) < produceHeader-CommandHeader+protocol.BatchHeaderSize {
		return &ProduceResult{Err: kerr.CorruptMessage}
	}
	p.clock = max(p.clock, int64(binary.BigEndian.Uint64(data)))
	kind, payload := data[kindAt-CommandHeader], data[produceHeader-CommandHeader:]
	h, err := protocol.ParseBatchHeader(payload)
	if err != nil {
		return &ProduceResult{Err: kerr.InvalidRequest} // not a record batch
	}
	if kind == kindDuplicate {
		// A retry of a batch that was not applied when the leader saw it:
		// it is now, just before this entry.
		off, dup, kerrv := p.producers.check(h, p.clock)
		switch {
		case kerrv != nil:
			return &ProduceResult{Err: kerrv}
		case !dup:
			return &ProduceResult{Err: kerr.OutOfOrderSequenceNumber}
		}
		return &ProduceResult{BaseOffset: off, LogStartOffset: p.log.View().LogStartOffset()}
	}
	base := h.BaseOffset
	if base != p.next || len(p.unapplied) == 0 || p.unapplied[0].index != index || p.unapplied[0].base != base {
		return Fatal{fmt.Errorf("partition %s: entry %d: batch at offset %d, the log is at %d (persisted: %v)", p.cfg.Dir, index, base, p.next, p.unapplied[:min(1, len(p.unapplied))])}
	}
	p.unapplied = p.unapplied[1:]
	if h.ProducerID >= 0 {
		p.applyTxn(h, payload, base)
	}
	if p.cfg.Observer != nil {
		p.cfg.Observer.ObserveBatch(payload)
	}
	epoch := h.PartitionLeaderEpoch
	if n := len(p.epochs); n == 0 || p.epochs[n-1].Epoch < epoch {
		p.epochs = append(p.epochs, EpochStart{Epoch: epoch, StartOffset: base})
		p.publishEpochs()
	}
	p.next = base + int64(h.LastOffsetDelta) + 1
	p.sinceCp += int64(len(payload))
	return &ProduceResult{BaseOffset: base, LogStartOffset: p.log.View().LogStartOffset()}
}

func (p *Partition) publishEpochs() {
	e := append([]EpochStart(nil), p.epochs...)
	p.pubEpochs.Store(&e)
}

// Applied implements StateMachine: publish one view per Ready, so fetches
// and parked readers see the new data at once.
func (p *Partition) Applied() bool {
	p.publishTxns(false)
	if err := p.log.PublishThrough(p.next); err != nil && p.publishErr == nil {
		p.publishErr = err // Apply checked this could not happen; halt at the next
	}
	if sp := p.spec; sp != nil && sp.next == p.next {
		clear(sp.producers) // nothing in flight: the applied table says it all
	}
	return p.sinceCp >= p.cfg.CheckpointBytes
}

// Maintain implements Maintainer: it applies retention and compaction when
// due. Deleted segments leave the published view at once; their files are
// removed once a checkpoint recording the new log start offset is durable
// (Saved).
func (p *Partition) Maintain(now time.Time) error {
	return errors.Join(p.maintainRetention(now), p.maintainCompaction(now))
}

// maintainCompaction compacts the sealed segments below the last position
// recorded by a synced checkpoint. Compaction runs on the replica's
// goroutine: it reads the whole log and rewrites the dirty segments.
func (p *Partition) maintainCompaction(now time.Time) error {
	cc := p.cfg.Compaction
	if cc == nil {
		return nil
	}
	if p.cfg.Retention == nil {
		// Close the files of replaced segments once their delay is over
		// (retention does this itself when configured).
		if _, err := p.log.ApplyRetention(now, -1, -1); err != nil {
			return err
		}
	}
	if now.Sub(p.lastCompaction) < cc.CheckEvery {
		return nil
	}
	p.lastCompaction = now
	pos := p.log.Published()
	if p.durableBase < pos.SegmentBase {
		// The segments sealed since are out of reach until a synced
		// checkpoint records a later position.
		p.syncForCompaction = true
	}
	if pos.NextOffset == p.compactedEnd {
		return nil // nothing new since a compaction that saw every segment
	}
	if _, err := p.log.Compact(p.durableBase, cc.MinDirtyRatio); err != nil {
		return fmt.Errorf("partition %s: compaction: %w", p.cfg.Dir, err)
	}
	if p.durableBase == pos.SegmentBase {
		p.compactedEnd = pos.NextOffset
	}
	return nil
}

func (p *Partition) maintainRetention(now time.Time) error {
	rc := p.cfg.Retention
	if rc == nil {
		return nil
	}
	rolled := rc.Bytes >= 0 && p.log.SegmentCount() != p.retentionSegs
	if !rolled && now.Sub(p.lastRetention) < rc.CheckEvery {
		return nil
	}
	p.lastRetention = now
	_, err := p.log.ApplyRetention(now, rc.Ms, rc.Bytes)
	p.retentionSegs = p.log.SegmentCount()
	p.pruneAborted(p.log.View().LogStartOffset())
	p.publishTxns(false)
	if err != nil {
		return fmt.Errorf("partition %s: retention: %w", p.cfg.Dir, err)
	}
	return nil
}

// Checkpoint implements StateMachine. Besides applied data, segments
// deleted by retention call for one: their files go once it is saved.
func (p *Partition) Checkpoint(index uint64) Checkpoint {
	deletes := p.log.DeletePending()
	sync := deletes || p.syncForCompaction
	if p.sinceCp == 0 && !sync {
		return nil
	}
	p.sinceCp = 0
	p.syncForCompaction = false
	p.producers.expire(p.clock)
	prods := p.producers.snapshot()
	return &partitionCp{
		key:     storage.GroupMetaKey(p.cfg.Group, "checkpoint"),
		job:     p.log.PrepareSyncPublished(),
		data:    partitionCheckpoint{Index: index, Producers: prods, Epochs: append([]EpochStart(nil), p.epochs...), Clock: p.clock, Aborted: append([]AbortedTxn(nil), p.aborted...)},
		log:     p.log,
		deletes: deletes,
		sync:    sync,
		part:    p,
	}
}

// Close implements StateMachine. A deleted partition's directory was
// already renamed by the node (DeletedDir); the renamed copy goes now.
func (p *Partition) Close(deleted bool) error {
	err := p.log.Close()
	if deleted {
		if rerr := os.RemoveAll(DeletedDir(p.cfg.Dir, p.cfg.Group)); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// DeletedDir is where a deleted partition's directory is moved before its
// files are removed; the group id makes it unique per incarnation.
func DeletedDir(dir string, group uint64) string {
	return fmt.Sprintf("%s.%d-delete", dir, group)
}

type partitionCp struct {
	key  []byte
	job  *storage.SyncJob
	data partitionCheckpoint

	log     *storage.PartitionLog
	deletes bool // retention deleted segments whose files wait for this checkpoint
	sync    bool // deletes, or compaction waits for this checkpoint to be durable
	part    *Partition
}

func (c *partitionCp) Index() uint64 { return c.data.Index }
func (c *partitionCp) Run() error    { return c.job.Run() }
func (c *partitionCp) Save(b *pebble.Batch) error {
	c.data.Position = c.job.Position()
	v, err := json.Marshal(c.data)
	if err != nil {
		return err
	}
	return b.Set(c.key, v, nil)
}

// MustSync implements SyncedCheckpoint: a checkpoint that moves the log
// start offset must be durable before the files below it are removed.
// Compaction asks for one too, to learn which segments are durable.
func (c *partitionCp) MustSync() bool { return c.sync }

// Saved implements SyncedCheckpoint: the position recorded, its start
// offset included, is durable, so the files below it can go, and the
// segments below its active segment can be compacted.
func (c *partitionCp) Saved() error {
	pos := c.job.Position()
	c.part.durableBase = max(c.part.durableBase, pos.SegmentBase)
	if !c.deletes {
		return nil
	}
	return c.log.RemoveDeleted(pos)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch as Kafka's leader-epoch
// cache does. Kafka's cache gains an entry each time a leader is elected,
// at the log end offset of that moment; here epochs holds only the epochs
// that wrote, so every epoch after the last one written, up to current
// (the leader's epoch now), starts at the log end offset. Hence: for the
// latest written epoch or any later one up to current, the log end offset;
// for an older one, the largest written epoch not above it and the start of
// the epoch after it; for one before the first, the requested epoch and the
// first epoch's start; for one beyond current, or UNDEFINED_EPOCH (-1),
// undefined (-1, -1).
//
// Answering undefined for an epoch the leader did hold (say the one a
// consumer got from ListOffsets after a restart, before anything was
// written) makes the Java consumer report truncation and reset its offset.
func EndOffsetForEpoch(epochs []EpochStart, epoch, current int32, end int64) (int32, int64) {
	n := len(epochs)
	if epoch < 0 || epoch > current {
		return -1, -1
	}
	if n == 0 || epoch >= epochs[n-1].Epoch {
		return epoch, end
	}
	i := sort.Search(n, func(i int) bool { return epochs[i].Epoch > epoch })
	if i == 0 {
		return epoch, epochs[0].StartOffset
	}
	return epochs[i-1].Epoch, epochs[i].StartOffset
}

// replayLog feeds every stored batch to o, in order.
func replayLog(v *storage.ReadView, o BatchObserver) error {
	for off := v.LogStartOffset(); off < v.HighWatermark(); {
		data, err := v.Read(off, 1<<20)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return fmt.Errorf("no data at offset %d below the high watermark %d", off, v.HighWatermark())
		}
		for len(data) >= protocol.BatchHeaderSize {
			h, err := protocol.ParseBatchHeader(data)
			if err != nil {
				return err
			}
			n := int(h.Length) + 12
			o.ObserveBatch(data[:n])
			data = data[n:]
			off = h.BaseOffset + int64(h.LastOffsetDelta) + 1
		}
	}
	return nil
}
