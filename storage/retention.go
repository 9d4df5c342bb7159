package storage

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Retention deletes whole sealed segments from the front of a log, as
// Kafka does for cleanup.policy=delete. A deletion goes through three
// steps, each safe to stop after:
//
//  1. DeleteSegments (or ApplyRetention), on the writer goroutine, drops
//     the segments from memory and publishes a view that starts at the
//     next segment: LogStartOffset, ListOffsets earliest and fetches below
//     the start (OFFSET_OUT_OF_RANGE) follow from the view. Nothing on
//     disk changes yet.
//  2. The owner records a LogPosition taken after that (its
//     LogStartOffset is the new start) durably, then calls RemoveDeleted
//     with it, which unlinks the files. A crash before the record leaves
//     the files in place and the old position names them all, so the log
//     reopens whole (the deletion simply did not happen, and retention
//     deletes them again); a crash after it reopens at the new start and
//     OpenPartitionLog removes whatever files are left below it. Either way
//     the durable position's active segment (never deleted: it is at or
//     above every start it can be recorded with) exists, and nothing
//     deleted durably comes back.
//  3. The file descriptors are closed FileDeleteDelay after step 1.
//
// Readers holding an older view read by pread on the segments' open
// *os.File, without locks and without reference counts. Counting the views
// that use a segment would need every reader to release its view, which
// nothing in the read path does today (views are dropped to the garbage
// collector, and a finalizer-driven close would make the fd's lifetime
// depend on GC timing). Instead the fd stays open for a grace period
// (Kafka's file.delete.delay.ms, 60 s by default): on Linux an unlinked
// file stays readable through an fd still open, and a fetch holds its view
// for milliseconds, so in practice every reader finishes first. One that
// does not gets an error from the closed file (Go's os.File makes a close
// concurrent with a pread safe: the pread completes or fails with
// ErrClosed, and the fd number is not reused under it), which ReadView
// maps to ErrOffsetOutOfRange since the segment is below the live start:
// the answer the newest view gives for that offset too.

const defaultFileDeleteDelay = 60 * time.Second

// SegmentInfo describes a sealed segment to a DeleteSegments predicate.
type SegmentInfo struct {
	BaseOffset int64
	NextOffset int64 // offset after its last batch: the next segment's base
	SizeBytes  int64
	// LargestTimestamp is the largest batch maxTimestamp in the segment,
	// or, when no batch carries one (all -1), the file's modification time
	// in milliseconds, as Kafka's LogSegment.largestTimestamp.
	LargestTimestamp int64
	// LogBytesFrom is the size of the log from this segment on: this
	// segment, every later one and the active segment.
	LogBytesFrom int64
}

// retiredSegment is a segment deleted from the log whose files are not yet
// unlinked, or whose fd is not yet closed.
type retiredSegment struct {
	seg      *segment
	at       time.Time // when DeleteSegments dropped it
	unlinked bool
	closed   bool
}

// DeleteSegments deletes sealed segments from the front of the log, oldest
// first, while del returns true for them; the active segment is never
// offered, nor one holding unpublished batches. It publishes a view
// starting at the first segment kept, and
// returns how many segments it deleted. The files stay until RemoveDeleted;
// see the comment at the top of this file.
func (l *PartitionLog) DeleteSegments(del func(SegmentInfo) bool) (int, error) {
	if l.closed {
		return 0, errLogClosed
	}
	if l.failed != nil {
		return 0, l.failed
	}
	now := time.Now()
	total := l.View().SizeBytes()
	n := 0
	// Only segments readers see whole: a segment holding batches not yet
	// published (replicated, not yet applied) is not old data.
	for _, s := range l.sealed[:l.publishedSealed()] {
		info := SegmentInfo{
			BaseOffset:       s.base,
			NextOffset:       s.next,
			SizeBytes:        s.size,
			LargestTimestamp: largestTimestamp(s),
			LogBytesFrom:     total,
		}
		if !del(info) {
			break
		}
		total -= s.size
		n++
	}
	if n == 0 {
		l.closeExpired(now)
		return 0, nil
	}
	for _, s := range l.sealed[:n] {
		l.retired = append(l.retired, &retiredSegment{seg: s, at: now})
		l.sealedBytes -= s.size
	}
	// Fresh slices: older views keep the old arrays (they are immutable
	// for them), and the deleted entries do not linger in ours.
	l.sealed = slices.Clone(l.sealed[n:])
	l.sealedViews = slices.Clone(l.sealedViews[n:])
	l.liveStart.Store(l.startOffset())
	l.publish(false)
	l.closeExpired(now)
	return n, nil
}

// largestTimestamp is Kafka's rule: the batches' maximum when there is
// one, else the file's modification time. A file whose time cannot be
// read counts as new (kept): retention must not delete on an error.
func largestTimestamp(s *segment) int64 {
	if s.maxTimestamp >= 0 {
		return s.maxTimestamp
	}
	fi, err := s.log.Stat()
	if err != nil {
		return time.Now().UnixMilli()
	}
	return fi.ModTime().UnixMilli()
}

// ApplyRetention deletes the sealed segments that retention.ms or
// retention.bytes no longer allow, oldest first, as Kafka's cleaner does
// for cleanup.policy=delete: a segment goes when now minus its largest
// timestamp exceeds retentionMs, or while the log would still hold at
// least retentionBytes without it. A negative setting disables that limit.
// The active segment always stays. It also closes the files of segments
// deleted more than FileDeleteDelay ago.
func (l *PartitionLog) ApplyRetention(now time.Time, retentionMs, retentionBytes int64) (int, error) {
	if retentionMs < 0 && retentionBytes < 0 {
		if !l.closed {
			l.closeExpired(time.Now())
		}
		return 0, nil
	}
	nowMs := now.UnixMilli()
	return l.DeleteSegments(func(s SegmentInfo) bool {
		if retentionMs >= 0 && nowMs-s.LargestTimestamp > retentionMs {
			return true
		}
		return retentionBytes >= 0 && s.LogBytesFrom-s.SizeBytes >= retentionBytes
	})
}

// DeletePending reports segments deleted from memory whose files are not
// yet removed: the owner should record a position (Position or a SyncJob's)
// durably and call RemoveDeleted with it.
func (l *PartitionLog) DeletePending() bool {
	for _, r := range l.retired {
		if !r.unlinked {
			return true
		}
	}
	return false
}

// RemoveDeleted unlinks the files of the deleted segments below
// durable.LogStartOffset. Call it only once durable is recorded durably:
// from then on a reopen starts at or above that offset. The index files go
// first, so a crash in between leaves a .log (removed again at reopen, being
// below the start) rather than stray indexes. It also closes the files of
// segments deleted more than FileDeleteDelay ago.
func (l *PartitionLog) RemoveDeleted(durable LogPosition) error {
	if l.closed {
		return errLogClosed
	}
	var errs []error
	for _, r := range l.retired {
		if r.unlinked || r.seg.next > durable.LogStartOffset {
			continue
		}
		var err error
		for _, ext := range []string{".index", ".timeindex", ".log"} {
			if rerr := os.Remove(segmentPath(l.dir, r.seg.base, ext)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = rerr
				break
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("partition log %s: remove deleted segment %020d: %w", l.dir, r.seg.base, err))
			continue
		}
		r.unlinked = true
	}
	l.closeExpired(time.Now())
	return errors.Join(errs...)
}

// closeExpired closes the fds of segments deleted at least FileDeleteDelay
// before now, and forgets those that are both closed and unlinked.
func (l *PartitionLog) closeExpired(now time.Time) {
	if len(l.retired) == 0 {
		return
	}
	keep := l.retired[:0]
	for _, r := range l.retired {
		if !r.closed && now.Sub(r.at) >= l.opts.FileDeleteDelay {
			// A failed close leaves nothing to retry: the fd is released
			// either way, and the file is read-only by now.
			_ = r.seg.log.Close()
			r.closed = true
		}
		if !r.closed || !r.unlinked {
			keep = append(keep, r)
		}
	}
	clear(l.retired[len(keep):])
	l.retired = keep
}

// SegmentCount is the number of segments, the active one included.
func (l *PartitionLog) SegmentCount() int { return len(l.sealed) + 1 }
