package storage

import (
	"errors"
	"fmt"
	"os"
	"slices"
)

// Appended but unpublished batches. A replicated partition writes each
// batch into its segment when the raft entry carrying it is persisted,
// before the entry commits: the segment is then the only copy of the batch
// on disk, and the raft log records where it lies (External). Readers see
// a batch only once its entry is applied (PublishThrough); until then a
// conflicting append from a new leader may cut it away again (TruncateTo),
// which raft allows for any entry not yet committed.
//
// A mark is the writer's state right after one batch: enough to publish
// the log up to there, or to cut it back to there. The log keeps the mark
// readers see (pub) and one per batch appended since (pending).
type mark struct {
	seg            *segment
	size, next     int64
	nIndex, nTime  int
	sinceIndex     int64
	maxTimestamp   int64
	maxTimestampAt int64
}

func (s *segment) mark() mark {
	return mark{seg: s, size: s.size, next: s.next, nIndex: len(s.index), nTime: len(s.timeIndex),
		sinceIndex: s.sinceIndex, maxTimestamp: s.maxTimestamp, maxTimestampAt: s.maxTimestampAt}
}

// view is the segment as it was at the mark. The index slices are capped:
// the writer may append to (or, after a truncation, overwrite) what lies
// past them, never what they cover, since nothing published is cut.
func (m mark) view() segmentView {
	s := m.seg
	return segmentView{
		base:           s.base,
		log:            s.log,
		size:           m.size,
		next:           m.next,
		index:          s.index[:m.nIndex:m.nIndex],
		timeIndex:      s.timeIndex[:m.nTime:m.nTime],
		maxTimestamp:   m.maxTimestamp,
		maxTimestampAt: m.maxTimestampAt,
	}
}

// restore puts the segment back in the state of the mark.
func (m mark) restore() {
	s := m.seg
	s.size, s.next, s.sinceIndex = m.size, m.next, m.sinceIndex
	s.index, s.timeIndex = s.index[:m.nIndex], s.timeIndex[:m.nTime]
	s.maxTimestamp, s.maxTimestampAt = m.maxTimestamp, m.maxTimestampAt
}

// position is the mark as a LogPosition (without the start offset).
func (m mark) position() LogPosition {
	return LogPosition{NextOffset: m.next, SegmentBase: m.seg.base, SegmentSize: m.size}
}

// PublishThrough makes the batches that end before offset next visible to
// readers, and no others: it publishes up to the last of them. Offsets
// that are not the end of an appended batch are refused.
func (l *PartitionLog) PublishThrough(next int64) error {
	if l.closed {
		return errLogClosed
	}
	if next == l.pub.next {
		l.publish(false) // wakes waiters, as Publish does
		return nil
	}
	n := 0
	for n < len(l.pending) && l.pending[n].next <= next {
		n++
	}
	if n == 0 || l.pending[n-1].next != next {
		return fmt.Errorf("partition log %s: publish through %d: no appended batch ends there (published to %d)", l.dir, next, l.pub.next)
	}
	l.pub = l.pending[n-1]
	l.pending = slices.Delete(l.pending, 0, n)
	l.publish(false)
	return nil
}

// TruncateTo cuts away every unpublished batch at or after offset next,
// which must be the end of the published log or of an appended batch:
// segments created for them are removed, and the segment that then ends
// the log is active again, cut to its size at that point.
func (l *PartitionLog) TruncateTo(next int64) error {
	if l.closed {
		return errLogClosed
	}
	if l.failed != nil {
		return l.failed
	}
	n := 0
	for n < len(l.pending) && l.pending[n].next <= next {
		n++
	}
	target := l.pub
	if n > 0 {
		target = l.pending[n-1]
	}
	if target.next != next {
		return fmt.Errorf("partition log %s: truncate to %d: not a batch boundary past the published end %d", l.dir, next, l.pub.next)
	}
	l.pending = l.pending[:n]
	for l.active != target.seg {
		// Written after target: its file goes, and the segment before it
		// is active again. Its stale index files are overwritten when it
		// is sealed again, and never trusted at open for an active one.
		gone := l.active
		last := len(l.sealed) - 1
		if last < 0 {
			return errors.New("storage: truncation target not in the log")
		}
		l.active = l.sealed[last]
		l.sealed = l.sealed[:last:last]
		l.sealedViews = l.sealedViews[:last:last]
		l.sealedBytes -= l.active.size
		err := errors.Join(gone.log.Close(), os.Remove(segmentPath(l.dir, gone.base, ".log")))
		for _, ext := range []string{".index", ".timeindex"} {
			if rerr := os.Remove(segmentPath(l.dir, gone.base, ext)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
		if err != nil {
			l.failed = fmt.Errorf("partition log %s: truncate: %w", l.dir, err)
			return l.failed
		}
	}
	target.restore()
	if err := l.active.log.Truncate(target.size); err != nil {
		l.failed = fmt.Errorf("partition log %s: truncate: %w", l.dir, err)
		return l.failed
	}
	// Segments from here on hold new data: sync them (and their directory
	// entries) again before anything relies on them.
	l.syncedBase.Store(min(l.syncedBase.Load(), l.active.base))
	l.dirSyncedBase.Store(min(l.dirSyncedBase.Load(), l.active.base))
	return nil
}

// Published is the position readers see: the end of the last published
// batch.
func (l *PartitionLog) Published() LogPosition {
	p := l.pub.position()
	p.LogStartOffset = l.startOffset()
	return p
}

// SyncAppended makes everything appended so far durable (fsync of the
// segments written and, for new segment files, of the directory), on the
// caller's goroutine: what a replicated partition does before the raft log
// records its entries' batches as external.
func (l *PartitionLog) SyncAppended() error {
	if l.failed != nil {
		return l.failed
	}
	return l.PrepareSync().Run()
}

// publishedSealed is how many sealed segments readers see whole: those
// before the segment of the published mark.
func (l *PartitionLog) publishedSealed() int {
	if l.pub.seg == l.active {
		return len(l.sealed)
	}
	for i := len(l.sealed) - 1; i >= 0; i-- {
		if l.sealed[i] == l.pub.seg {
			return i
		}
	}
	// Unreachable: the published segment is never truncated, deleted or
	// compacted away (those only touch segments below a checkpoint, which
	// is at or before pub).
	panic("storage: published segment not in the log")
}

// loadMarks sets, at open, the published mark at durable and a pending mark
// for every batch after it (OpenPartitionLogAt). Sealed segments at or
// after durable are re-indexed by scanning, so that their in-memory indexes
// and the marks agree entry for entry.
func (l *PartitionLog) loadMarks(durable LogPosition) error {
	segs := append(slices.Clip(l.sealed), l.active)
	first := slices.IndexFunc(segs, func(s *segment) bool { return s.base == durable.SegmentBase })
	if first < 0 {
		return fmt.Errorf("segment %020d of the durable position is missing", durable.SegmentBase)
	}
	if first == len(segs)-1 && l.active.size == durable.SegmentSize {
		l.pub = l.active.mark() // nothing after the durable position
		return nil
	}
	interval := l.opts.IndexIntervalBytes
	found := false
	for j, s := range segs[first:] {
		if s != l.active {
			if err := s.rebuild(s.size, interval); err != nil {
				return fmt.Errorf("segment %020d: %w", s.base, err)
			}
			s.appendTimeEntry() // as seal does
			l.sealedViews[first+j] = s.view()
		}
		tmp := newSegment(s.base, s.log)
		if j == 0 && durable.SegmentSize == 0 {
			l.pub, found = tmp.mark(), true
			l.pub.seg = s
		}
		sc := newBatchScanner(s.log, 0, s.size, 256<<10)
		for {
			h, pos, ok, err := sc.next()
			if err != nil {
				return fmt.Errorf("segment %020d: %w", s.base, err)
			}
			if !ok {
				break
			}
			tmp.track(h, pos, interval)
			m := tmp.mark()
			m.seg = s
			switch {
			case j == 0 && m.size < durable.SegmentSize:
			case j == 0 && m.size == durable.SegmentSize:
				l.pub, found = m, true
			case j == 0 && !found:
				return fmt.Errorf("segment %020d: durable size %d is not a batch boundary", s.base, durable.SegmentSize)
			default:
				l.pending = append(l.pending, m)
			}
		}
	}
	if !found {
		return fmt.Errorf("segment %020d: durable size %d is past its end", durable.SegmentBase, durable.SegmentSize)
	}
	return nil
}

// ReadAt reads n bytes at pos of the segment whose base offset is base:
// the bulk of an External raft entry, read back at open.
func (l *PartitionLog) ReadAt(base, pos int64, n int) ([]byte, error) {
	for _, s := range append(slices.Clip(l.sealed), l.active) {
		if s.base != base {
			continue
		}
		if pos < 0 || pos+int64(n) > s.size {
			return nil, fmt.Errorf("partition log %s: %d bytes at %d of segment %020d, which holds %d", l.dir, n, pos, base, s.size)
		}
		b := make([]byte, n)
		if _, err := s.log.ReadAt(b, pos); err != nil {
			return nil, fmt.Errorf("partition log %s: segment %020d: %w", l.dir, base, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("partition log %s: no segment %020d", l.dir, base)
}
