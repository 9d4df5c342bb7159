package storage

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ErrOffsetOutOfRange is returned by reads below the log start offset or
// above the high watermark (Kafka's OFFSET_OUT_OF_RANGE).
var ErrOffsetOutOfRange = errors.New("storage: offset out of range")

var errLogClosed = errors.New("storage: partition log closed")

const (
	defaultSegmentBytes       = 128 << 20
	defaultIndexIntervalBytes = 4096
)

// LogPosition is a point in a partition log: everything before it is in the segments.
type LogPosition struct {
	NextOffset  int64 // offset the next appended batch gets
	SegmentBase int64 // base offset of the active segment
	SegmentSize int64 // bytes of the active segment at that point
	// LogStartOffset is the log's first offset: segments below it were
	// deleted by retention, and reopening removes whatever of their files
	// is left. 0 in positions recorded before retention existed.
	LogStartOffset int64 `json:",omitempty"`
}

// LogOptions tune a partition log; zero fields take the defaults.
type LogOptions struct {
	SegmentBytes       int64 // roll when active size + next batch > this (and active non-empty); default 128 MiB when 0
	IndexIntervalBytes int32 // default 4096 when 0
	// FileDeleteDelay is how long the open file of a segment deleted by
	// retention stays readable for readers of older views (Kafka's
	// file.delete.delay.ms); default 60 s when 0, negative closes at once.
	FileDeleteDelay time.Duration
}

// PartitionLog is the segment files of one partition. Every method except
// View is for the single writer goroutine (the replica actor); readers use
// the immutable ReadViews it publishes, and SyncJobs run anywhere.
//
// A replicated partition appends each batch when its raft entry is
// persisted and makes it durable at once (SyncAppended), before the raft
// log names it (External); readers see it once it is applied
// (PublishThrough), and raft may cut it before that (TruncateTo). The owner
// records the published position with its checkpoints (PrepareSync-
// Published/Run) and reopens there after a restart, keeping what the raft
// log names after it (OpenPartitionLogAt).
type PartitionLog struct {
	dir  string
	opts LogOptions

	sealed      []*segment
	sealedViews []segmentView // views of sealed, which never change again
	sealedBytes int64
	active      *segment
	closed      bool
	failed      error // a write failed: the files no longer match memory

	// Segments deleted by retention whose files are not yet removed or
	// closed (retention.go), and the log start offset every view shares:
	// a read error on a segment below it means the segment was deleted.
	retired   []*retiredSegment
	liveStart atomic.Int64

	view atomic.Pointer[ReadView]
	// pub is the state readers see; pending holds a mark per batch
	// appended since (pending.go).
	pub     mark
	pending []mark

	// Written by SyncJob.Run on other goroutines. Each only grows.
	syncedBase    atomic.Int64 // sealed segments below this base are durable
	dirSyncedBase atomic.Int64 // directory entries up to this segment base are durable
	parentSynced  atomic.Bool  // the log directory's own entry is durable
}

// OpenPartitionLog creates dir if needed and opens the log at the durable
// position: segments with a base > durable.SegmentBase are deleted, the
// segment at durable.SegmentBase is truncated to durable.SegmentSize; zero
// LogPosition = empty log. Files of segments below durable.LogStartOffset
// (deleted by retention, not yet removed at the crash) are removed too; the
// log starts at its first remaining segment, which may be above 0. Sealed
// segments load their index files (rebuilt by scanning if missing or
// inconsistent); the active segment's indexes are always rebuilt by
// scanning, since its files were never made durable. It publishes an
// initial view.
func OpenPartitionLog(dir string, opts LogOptions, durable LogPosition) (*PartitionLog, error) {
	return OpenPartitionLogAt(dir, opts, durable, durable)
}

// OpenPartitionLogAt opens the log as OpenPartitionLog does, except that
// it keeps the batches after durable up to end (a later position whose
// bytes were synced by SyncAppended: what the raft log refers to as
// External), unpublished: readers see the log up to durable, and the
// owner publishes the rest with PublishThrough as it applies them, or cuts
// them with TruncateTo. end.NextOffset is not checked when 0.
func OpenPartitionLogAt(dir string, opts LogOptions, durable, end LogPosition) (*PartitionLog, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = defaultSegmentBytes
	}
	if opts.IndexIntervalBytes <= 0 {
		opts.IndexIntervalBytes = defaultIndexIntervalBytes
	}
	if opts.FileDeleteDelay == 0 {
		opts.FileDeleteDelay = defaultFileDeleteDelay
	}
	if durable.SegmentBase < 0 || durable.SegmentSize < 0 || durable.NextOffset < durable.SegmentBase ||
		durable.LogStartOffset < 0 || durable.LogStartOffset > durable.SegmentBase {
		return nil, fmt.Errorf("partition log %s: invalid durable position %+v", dir, durable)
	}
	if end.SegmentBase < durable.SegmentBase || (end.SegmentBase == durable.SegmentBase && end.SegmentSize < durable.SegmentSize) {
		return nil, fmt.Errorf("partition log %s: end %+v before the durable position %+v", dir, end, durable)
	}
	l := &PartitionLog{dir: dir, opts: opts}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("partition log %s: %w", dir, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("partition log %s: %w", dir, err)
	} else {
		l.parentSynced.Store(true)
	}
	if err := l.load(durable, end); err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("partition log %s: %w", dir, err)
	}
	if err := l.loadMarks(durable); err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("partition log %s: %w", dir, err)
	}
	l.syncedBase.Store(l.active.base)
	l.liveStart.Store(l.startOffset())
	l.publish(false)
	return l, nil
}

// load brings the directory to the durable position and loads the segments.
// Everything is checked before anything is deleted or truncated, so that a
// wrong position is refused without damage.
func (l *PartitionLog) load(durable, end LogPosition) error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []int64
	var stale []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if ext != ".log" && ext != ".index" && ext != ".timeindex" {
			continue
		}
		stem := strings.TrimSuffix(e.Name(), ext)
		base, err := strconv.ParseInt(stem, 10, 64)
		if err != nil || len(stem) != 20 {
			continue // not ours
		}
		switch {
		// Index files of the durable segment may describe bytes past the
		// durable size; they are rewritten when it is sealed or closed.
		// Below the start are the leftovers of retention: a deletion
		// becomes durable with the position recording the new start, and
		// the files go only after that, so they may survive a crash.
		case base > end.SegmentBase || (base == end.SegmentBase && ext != ".log") || base < durable.LogStartOffset:
			stale = append(stale, e.Name())
		case ext == ".log":
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)

	for _, base := range bases {
		if base == end.SegmentBase {
			break
		}
		s, err := l.loadSealed(base)
		if err != nil {
			return fmt.Errorf("segment %020d: %w", base, err)
		}
		if n := len(l.sealed); n > 0 && l.sealed[n-1].next != base {
			return fmt.Errorf("segment %020d follows a segment ending at offset %d", base, l.sealed[n-1].next)
		}
		l.sealed = append(l.sealed, s)
		l.sealedViews = append(l.sealedViews, s.view())
		l.sealedBytes += s.size
	}
	if !slices.Contains(bases, durable.SegmentBase) && end.SegmentBase != durable.SegmentBase {
		return fmt.Errorf("segment %020d of the durable position is missing", durable.SegmentBase)
	}
	fileSize, err := l.loadActive(end, slices.Contains(bases, end.SegmentBase))
	if err != nil {
		return fmt.Errorf("segment %020d: %w", end.SegmentBase, err)
	}
	if n := len(l.sealed); n > 0 && l.sealed[n-1].next != l.active.base {
		return fmt.Errorf("active segment %020d follows a segment ending at offset %d", l.active.base, l.sealed[n-1].next)
	}
	if end.NextOffset != 0 && l.active.next != end.NextOffset {
		return fmt.Errorf("segment %020d ends at offset %d, end position says %d", l.active.base, l.active.next, end.NextOffset)
	}

	// Bytes and segments past the end were never recorded as durable;
	// the raft log re-applies or re-sends them.
	if fileSize > end.SegmentSize {
		if err := l.active.log.Truncate(end.SegmentSize); err != nil {
			return err
		}
	}
	for _, name := range stale {
		if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func (l *PartitionLog) loadSealed(base int64) (*segment, error) {
	f, err := os.OpenFile(segmentPath(l.dir, base, ".log"), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	s := newSegment(base, f)
	fi, err := f.Stat()
	if err == nil {
		err = s.loadSealed(l.dir, fi.Size(), l.opts.IndexIntervalBytes)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// loadActive opens (or creates) the durable segment and rebuilds its
// indexes up to the durable size, returning the file's current size.
func (l *PartitionLog) loadActive(durable LogPosition, exists bool) (int64, error) {
	path := segmentPath(l.dir, durable.SegmentBase, ".log")
	if !exists {
		if durable.SegmentSize > 0 {
			return 0, fmt.Errorf("missing, durable position says %d bytes", durable.SegmentSize)
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return 0, err
		}
		l.active = newSegment(durable.SegmentBase, f)
		l.dirSyncedBase.Store(math.MinInt64) // the new entry needs a directory fsync
		return 0, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	l.active = newSegment(durable.SegmentBase, f)
	l.dirSyncedBase.Store(durable.SegmentBase)
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() < durable.SegmentSize {
		return 0, fmt.Errorf("holds %d bytes, durable position says %d", fi.Size(), durable.SegmentSize)
	}
	return fi.Size(), l.active.rebuild(durable.SegmentSize, l.opts.IndexIntervalBytes)
}

// Append writes one record batch, which must already carry its final base
// offset (== NextOffset), to the active segment in one write, rolling first
// if the segment is full. Nothing is fsynced and nothing becomes visible to
// readers until Publish.
func (l *PartitionLog) Append(batch []byte) error {
	return l.AppendSplit(batch, nil)
}

// AppendSplit appends one batch given as two pieces, head then body, so a
// caller can rewrite the header fields in a small copy of the head and
// leave the bulk of the batch where it is.
func (l *PartitionLog) AppendSplit(head, body []byte) error {
	if l.closed {
		return errLogClosed
	}
	if l.failed != nil {
		return l.failed
	}
	h, err := parseBatchHeader(head)
	if err != nil {
		return fmt.Errorf("partition log %s: append: %w", l.dir, err)
	}
	if n := int64(len(head) + len(body)); h.size != n {
		return fmt.Errorf("partition log %s: append: batch length field says %d bytes, have %d", l.dir, h.size, n)
	}
	if h.baseOffset != l.active.next {
		return fmt.Errorf("partition log %s: append: base offset %d, want %d", l.dir, h.baseOffset, l.active.next)
	}
	if l.needsRoll(h) {
		if err := l.roll(); err != nil {
			l.failed = fmt.Errorf("partition log %s: roll: %w", l.dir, err)
			return l.failed
		}
	}
	s := l.active
	_, err = s.log.WriteAt(head, s.size)
	if err == nil && len(body) > 0 {
		_, err = s.log.WriteAt(body, s.size+int64(len(head)))
	}
	if err != nil {
		// A partial write may sit past s.size; the log refuses further
		// appends so the owner stops (fail-stop) rather than guess.
		l.failed = fmt.Errorf("partition log %s: append: %w", l.dir, err)
		return l.failed
	}
	s.track(h, s.size, l.opts.IndexIntervalBytes)
	l.pending = append(l.pending, s.mark())
	return nil
}

// needsRoll also keeps positions and relative offsets within the uint32
// fields of the index files, whatever SegmentBytes says.
func (l *PartitionLog) needsRoll(h batchHeader) bool {
	s := l.active
	if s.size == 0 {
		return false
	}
	limit := min(l.opts.SegmentBytes, math.MaxUint32)
	return s.size+h.size > limit || h.lastOffset-s.base > math.MaxInt32
}

func (l *PartitionLog) roll() error {
	old := l.active
	f, err := os.OpenFile(segmentPath(l.dir, old.next, ".log"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := old.seal(l.dir); err != nil {
		f.Close()
		return err
	}
	l.sealed = append(l.sealed, old)
	l.sealedViews = append(l.sealedViews, old.view())
	l.sealedBytes += old.size
	l.active = newSegment(old.next, f)
	return nil
}

// NextOffset is the offset the next appended batch must carry.
func (l *PartitionLog) NextOffset() int64 { return l.active.next }

// Position is the current end of the log, as a LogPosition.
func (l *PartitionLog) Position() LogPosition {
	return LogPosition{NextOffset: l.active.next, SegmentBase: l.active.base, SegmentSize: l.active.size, LogStartOffset: l.startOffset()}
}

// startOffset is the first offset the log holds.
func (l *PartitionLog) startOffset() int64 {
	if len(l.sealed) > 0 {
		return l.sealed[0].base
	}
	return l.active.base
}

// Dir is the directory holding the segment files.
func (l *PartitionLog) Dir() string { return l.dir }

// Publish makes everything appended so far visible: it stores a new view
// and closes the previous view's Changed channel. It always publishes, even
// when nothing was appended, so a caller may use it to wake waiters.
func (l *PartitionLog) Publish() {
	if l.closed {
		return
	}
	l.pub = l.active.mark()
	l.pending = l.pending[:0]
	l.publish(false)
}

// publish costs O(1) whatever the number of segments: sealed segment views
// are shared by every view, as a capped prefix of sealedViews.
func (l *PartitionLog) publish(closed bool) {
	n := l.publishedSealed()
	size := l.sealedBytes + l.pub.size
	for _, s := range l.sealed[n:] {
		size -= s.size
	}
	v := &ReadView{
		sealed:    l.sealedViews[:n:n],
		active:    l.pub.view(),
		size:      size,
		changed:   make(chan struct{}),
		closed:    closed,
		liveStart: &l.liveStart,
	}
	if closed {
		close(v.changed)
	}
	if old := l.view.Swap(v); old != nil {
		close(old.changed)
	}
}

// View is the latest published view; safe from any goroutine.
func (l *PartitionLog) View() *ReadView { return l.view.Load() }

// Close writes the active segment's index files, closes the files and
// publishes a final view whose LogClosed is true, closing the Changed
// channel of the last one. Reads through old views fail afterwards.
func (l *PartitionLog) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	var err error
	if l.failed == nil {
		// Index files of the active segment are a convenience for tools:
		// reopening rebuilds them, since they were never fsynced.
		err = l.active.seal(l.dir)
	}
	l.publish(true)
	return errors.Join(err, l.closeFiles())
}

func (l *PartitionLog) closeFiles() error {
	var errs []error
	for _, s := range l.sealed {
		errs = append(errs, s.log.Close())
	}
	if l.active != nil {
		errs = append(errs, l.active.log.Close())
	}
	for _, r := range l.retired {
		if !r.closed {
			errs = append(errs, r.seg.log.Close())
			r.closed = true
		}
	}
	return errors.Join(errs...)
}

// Delete closes the log and removes its directory.
func (l *PartitionLog) Delete() error {
	err := l.Close()
	return errors.Join(err, os.RemoveAll(l.dir))
}

// SyncJob fsyncs a partition log up to the position captured by
// PrepareSync. It holds only file handles and paths, so Run may proceed on
// another goroutine while the writer keeps appending.
type SyncJob struct {
	log        *PartitionLog
	pos        LogPosition
	active     *os.File
	sealed     []*segment // only base and log are used: both immutable
	syncDir    bool
	syncParent bool
}

// PrepareSync captures what must be fsynced for everything appended so far:
// the active segment, and each segment sealed since the last successful
// Run, with its index files. Segments of a job that failed are included
// again in the next one.
func (l *PartitionLog) PrepareSync() *SyncJob { return l.prepareSync(l.active.mark()) }

// PrepareSyncPublished is PrepareSync up to the published view only: what
// a checkpoint records, since batches past it may still be cut.
func (l *PartitionLog) PrepareSyncPublished() *SyncJob { return l.prepareSync(l.pub) }

// prepareSync captures what must be fsynced for the log up to m.
func (l *PartitionLog) prepareSync(m mark) *SyncJob {
	pos := m.position()
	pos.LogStartOffset = l.startOffset()
	j := &SyncJob{
		log:        l,
		pos:        pos,
		active:     m.seg.log,
		syncDir:    l.dirSyncedBase.Load() < m.seg.base,
		syncParent: !l.parentSynced.Load(),
	}
	from := l.syncedBase.Load()
	for i := len(l.sealed) - 1; i >= 0 && l.sealed[i].base >= from; i-- {
		if l.sealed[i].base < m.seg.base {
			j.sealed = append(j.sealed, l.sealed[i])
		}
	}
	return j
}

// Run fsyncs the files (and the directory when segments were created). It
// fails if the log was closed meanwhile: sync before Close.
func (j *SyncJob) Run() error {
	dir := j.log.dir
	for _, s := range j.sealed {
		if err := syncSealed(dir, s); err != nil {
			if s.base < j.log.liveStart.Load() {
				// Retention deleted it meanwhile (its file may be closed
				// or removed already): nothing left to make durable.
				continue
			}
			return err
		}
	}
	if err := j.active.Sync(); err != nil {
		return fmt.Errorf("segment %s: sync: %w", j.active.Name(), err)
	}
	if j.syncDir {
		if err := syncPath(dir); err != nil {
			return err
		}
	}
	if j.syncParent {
		if err := syncPath(filepath.Dir(dir)); err != nil {
			return err
		}
		j.log.parentSynced.Store(true)
	}
	storeMax(&j.log.syncedBase, j.pos.SegmentBase)
	storeMax(&j.log.dirSyncedBase, j.pos.SegmentBase)
	return nil
}

func syncSealed(dir string, s *segment) error {
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("segment %s: sync: %w", s.log.Name(), err)
	}
	for _, ext := range []string{".index", ".timeindex"} {
		if err := syncPath(segmentPath(dir, s.base, ext)); err != nil {
			return err
		}
	}
	return nil
}

// Position is what is durable once Run returned nil.
func (j *SyncJob) Position() LogPosition { return j.pos }

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// storeMax raises a to v; jobs may finish out of order.
func storeMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return
		}
	}
}
