package storage

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"sync/atomic"
)

// ReadView is an immutable snapshot of a partition log: its segments and
// their sizes at the moment of Publish. Any goroutine may read through it
// with pread on the shared files, outside the replica actor; since the
// writer only ever writes past a published size, a view never sees bytes
// appended after it was taken.
type ReadView struct {
	sealed  []segmentView
	active  segmentView
	size    int64
	changed chan struct{}
	closed  bool
	// liveStart is the log's current start offset, shared by every view
	// of the log: a segment of this view below it was deleted by
	// retention after the view was taken (see gone).
	liveStart *atomic.Int64
}

// segmentView is a segment as a view sees it.
type segmentView struct {
	base           int64
	log            *os.File
	size           int64
	next           int64
	index          []offsetEntry
	timeIndex      []timeEntry
	maxTimestamp   int64
	maxTimestampAt int64
}

// LogStartOffset is the first offset held by the log.
func (v *ReadView) LogStartOffset() int64 {
	if len(v.sealed) > 0 {
		return v.sealed[0].base
	}
	return v.active.base
}

// HighWatermark is the log's NextOffset when the view was published.
func (v *ReadView) HighWatermark() int64 { return v.active.next }

// Changed is closed when a newer view is published, or the log closed.
func (v *ReadView) Changed() <-chan struct{} { return v.changed }

// LogClosed reports that this is the final view of a closed log: waiting on
// Changed will not bring new data.
func (v *ReadView) LogClosed() bool { return v.closed }

// SizeBytes is the total size of the visible batches.
func (v *ReadView) SizeBytes() int64 { return v.size }

func (v *ReadView) segmentCount() int { return len(v.sealed) + 1 }

func (v *ReadView) segment(i int) *segmentView {
	if i < len(v.sealed) {
		return &v.sealed[i]
	}
	return &v.active
}

// gone turns a read error on a segment that retention deleted after the
// view was taken into ErrOffsetOutOfRange, which is what a fetch of that
// offset through the newest view answers too. Such a segment's file stays
// readable for a while (LogOptions.FileDeleteDelay), so only a reader that
// holds a view longer than that meets this.
func (v *ReadView) gone(s *segmentView, err error) error {
	if err != nil && v.liveStart != nil && s.base < v.liveStart.Load() {
		return fmt.Errorf("%w: segment %020d was deleted by retention (%v)", ErrOffsetOutOfRange, s.base, err)
	}
	return err
}

// segmentFor returns the segment holding offset, which must lie in
// [LogStartOffset, HighWatermark).
func (v *ReadView) segmentFor(offset int64) *segmentView {
	if offset >= v.active.base {
		return &v.active
	}
	i := sort.Search(len(v.sealed), func(i int) bool { return v.sealed[i].base > offset })
	return &v.sealed[i-1]
}

// Read returns whole batches starting with the batch that contains offset,
// as many as fit in maxBytes but always at least one (even if larger), all
// from one segment as Kafka does. offset == HighWatermark gives (nil, nil);
// offsets outside [LogStartOffset, HighWatermark] give ErrOffsetOutOfRange.
// The result is a fresh slice the caller owns.
func (v *ReadView) Read(offset int64, maxBytes int32) ([]byte, error) {
	hw := v.HighWatermark()
	if offset == hw {
		return nil, nil
	}
	if offset < v.LogStartOffset() || offset > hw {
		return nil, ErrOffsetOutOfRange
	}
	s := v.segmentFor(offset)
	h, pos, err := s.find(offset)
	if err != nil {
		return nil, v.gone(s, err)
	}
	n := h.size
	if int64(maxBytes) > n {
		n = min(int64(maxBytes), s.size-pos)
	}
	// One pread for the whole range, then cut at the last whole batch: the
	// bytes are already in hand, so walking their headers costs nothing.
	buf := make([]byte, n)
	if _, err := s.log.ReadAt(buf, pos); err != nil {
		return nil, v.gone(s, fmt.Errorf("segment %020d: read at %d: %w", s.base, pos, err))
	}
	return buf[:wholeBatches(buf)], nil
}

// wholeBatches is the length of the longest prefix of b made of whole batches.
func wholeBatches(b []byte) int {
	cut := 0
	for len(b)-cut >= batchHeaderLen {
		size := 12 + int(int32(binary.BigEndian.Uint32(b[cut+batchLengthOffset:])))
		if size < batchHeaderLen || size > len(b)-cut {
			break
		}
		cut += size
	}
	return cut
}

// find locates the batch containing offset: the sparse index gives a start
// at most one index interval (plus a batch) before it, then batch headers
// are walked.
func (s *segmentView) find(offset int64) (batchHeader, int64, error) {
	start := lookupOffset(s.index, uint32(offset-s.base))
	sc := newBatchScanner(s.log, start, s.size, 8<<10)
	for {
		h, pos, ok, err := sc.next()
		if err != nil {
			return h, 0, fmt.Errorf("segment %020d: %w", s.base, err)
		}
		if !ok {
			return h, 0, fmt.Errorf("segment %020d: offset %d not found below position %d", s.base, offset, s.size)
		}
		if h.lastOffset >= offset {
			return h, pos, nil
		}
	}
}

// OffsetForTimestamp returns the first batch whose maxTimestamp >= ts (its
// bytes; the caller refines to the record), found=false if none. Segments
// whose maximum is below ts are skipped whole; in the first one that is
// not, the time index bounds the walk.
func (v *ReadView) OffsetForTimestamp(ts int64) (batch []byte, found bool, err error) {
	for i := range v.segmentCount() {
		s := v.segment(i)
		if s.size == 0 || s.maxTimestamp < ts {
			continue
		}
		start := int64(0)
		if rel, ok := lookupTime(s.timeIndex, ts); ok {
			start = lookupOffset(s.index, rel)
		}
		sc := newBatchScanner(s.log, start, s.size, 8<<10)
		for {
			h, pos, ok, err := sc.next()
			if err != nil {
				return nil, false, v.gone(s, fmt.Errorf("segment %020d: %w", s.base, err))
			}
			if !ok {
				return nil, false, fmt.Errorf("segment %020d: no batch reaches its max timestamp %d", s.base, s.maxTimestamp)
			}
			if h.maxTimestamp >= ts {
				b, err := readBatchAt(s.log, pos, s.size)
				if err != nil {
					return nil, false, v.gone(s, fmt.Errorf("segment %020d: %w", s.base, err))
				}
				return b, true, nil
			}
		}
	}
	return nil, false, nil
}

// MaxTimestampBatch returns the batch holding the largest maxTimestamp in
// the log (the earliest such batch), found=false on an empty log.
func (v *ReadView) MaxTimestampBatch() (batch []byte, found bool, err error) {
	var best *segmentView
	for i := range v.segmentCount() {
		s := v.segment(i)
		if s.size > 0 && (best == nil || s.maxTimestamp > best.maxTimestamp) {
			best = s
		}
	}
	if best == nil {
		return nil, false, nil
	}
	h, pos, err := best.find(best.maxTimestampAt)
	if err != nil {
		return nil, false, v.gone(best, err)
	}
	if h.baseOffset != best.maxTimestampAt {
		return nil, false, fmt.Errorf("segment %020d: max timestamp batch %d not found", best.base, best.maxTimestampAt)
	}
	b, err := readBatchAt(best.log, pos, best.size)
	if err != nil {
		return nil, false, v.gone(best, fmt.Errorf("segment %020d: %w", best.base, err))
	}
	return b, true, nil
}
