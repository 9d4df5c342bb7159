package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Record batch v2 header fields this package needs. The broker validates
// batches (CRC, codec) before they reach the log; here only the framing is
// read, to walk a segment and to index it.
const (
	batchHeaderLen    = 61 // smallest possible v2 batch: the header with no records
	batchFieldsLen    = 43 // bytes up to and including maxTimestamp
	batchLengthOffset = 8
	batchMagicOffset  = 16
	batchMagic        = 2
)

// batchHeader is what the log knows about a stored batch.
type batchHeader struct {
	baseOffset   int64
	size         int64 // whole batch: 12 + batchLength
	lastOffset   int64
	maxTimestamp int64
}

// parseBatchHeader reads the framing fields from the first batchFieldsLen
// bytes of a batch. It checks only what the log relies on to stay walkable.
func parseBatchHeader(b []byte) (batchHeader, error) {
	if len(b) < batchFieldsLen {
		return batchHeader{}, fmt.Errorf("batch header truncated: %d bytes", len(b))
	}
	h := batchHeader{
		baseOffset:   int64(binary.BigEndian.Uint64(b[0:])),
		size:         12 + int64(int32(binary.BigEndian.Uint32(b[batchLengthOffset:]))),
		maxTimestamp: int64(binary.BigEndian.Uint64(b[35:])),
	}
	delta := int32(binary.BigEndian.Uint32(b[23:]))
	switch {
	case b[batchMagicOffset] != batchMagic:
		return h, fmt.Errorf("batch at offset %d: magic %d, want %d", h.baseOffset, b[batchMagicOffset], batchMagic)
	case h.size < batchHeaderLen:
		return h, fmt.Errorf("batch at offset %d: length %d below the header size", h.baseOffset, h.size)
	case delta < 0:
		return h, fmt.Errorf("batch at offset %d: negative lastOffsetDelta %d", h.baseOffset, delta)
	case h.baseOffset < 0:
		return h, fmt.Errorf("batch: negative base offset %d", h.baseOffset)
	}
	h.lastOffset = h.baseOffset + int64(delta)
	return h, nil
}

// batchScanner walks the batch headers of one segment file between two
// positions. It reads the file in chunks so that a segment of small batches
// costs one pread per chunk rather than one per batch, while a segment of
// large batches reads only a chunk per batch, not the whole payload.
type batchScanner struct {
	f        *os.File
	pos, end int64
	buf      []byte
	bufPos   int64 // file position of buf[0]
	bufLen   int
}

func newBatchScanner(f *os.File, pos, end int64, chunk int) *batchScanner {
	return &batchScanner{f: f, pos: pos, end: end, buf: make([]byte, chunk)}
}

// next returns the header and position of the next batch, or ok=false at
// end. A batch that does not fit before end is an error: segments only ever
// hold whole batches up to any size the log hands out.
func (s *batchScanner) next() (h batchHeader, pos int64, ok bool, err error) {
	if s.pos >= s.end {
		return h, 0, false, nil
	}
	if s.end-s.pos < batchHeaderLen {
		return h, 0, false, fmt.Errorf("torn batch at position %d: %d bytes before the end", s.pos, s.end-s.pos)
	}
	if s.pos < s.bufPos || s.pos+batchFieldsLen > s.bufPos+int64(s.bufLen) {
		n := int(min(int64(len(s.buf)), s.end-s.pos))
		if _, err := s.f.ReadAt(s.buf[:n], s.pos); err != nil {
			return h, 0, false, fmt.Errorf("read at %d: %w", s.pos, err)
		}
		s.bufPos, s.bufLen = s.pos, n
	}
	off := int(s.pos - s.bufPos)
	h, err = parseBatchHeader(s.buf[off : off+batchFieldsLen])
	if err != nil {
		return h, 0, false, fmt.Errorf("position %d: %w", s.pos, err)
	}
	if s.pos+h.size > s.end {
		return h, 0, false, fmt.Errorf("torn batch at position %d: size %d, %d bytes before the end", s.pos, h.size, s.end-s.pos)
	}
	pos = s.pos
	s.pos += h.size
	return h, pos, true, nil
}

// segment is one .log file and its indexes. base and log never change after
// creation and may be used by readers; every other field belongs to the
// writer goroutine and reaches readers only through a segmentView copy.
type segment struct {
	base int64
	log  *os.File

	size           int64 // bytes written
	next           int64 // offset after the last batch
	index          []offsetEntry
	timeIndex      []timeEntry
	sinceIndex     int64 // bytes appended since the last index entry
	maxTimestamp   int64 // math.MinInt64 while empty
	maxTimestampAt int64 // base offset of the first batch carrying maxTimestamp
}

func segmentPath(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

func newSegment(base int64, f *os.File) *segment {
	return &segment{base: base, log: f, next: base, maxTimestamp: math.MinInt64, maxTimestampAt: -1}
}

// track updates the in-memory indexes for a batch written at pos. The rule
// mirrors Kafka's: once IndexIntervalBytes have accumulated since the last
// entry, the batch is indexed, and the time index gets the running maximum if
// it grew. A reader can therefore start at the last entry at or below its
// target and scan less than one interval (plus one batch) of headers.
func (s *segment) track(h batchHeader, pos int64, interval int32) {
	if h.maxTimestamp > s.maxTimestamp {
		s.maxTimestamp, s.maxTimestampAt = h.maxTimestamp, h.baseOffset
	}
	if pos > 0 && s.sinceIndex >= int64(interval) {
		s.index = append(s.index, offsetEntry{rel: uint32(h.baseOffset - s.base), pos: uint32(pos)})
		s.appendTimeEntry()
		s.sinceIndex = 0
	}
	s.sinceIndex += h.size
	s.size = pos + h.size
	s.next = h.lastOffset + 1
}

func (s *segment) appendTimeEntry() {
	if s.maxTimestampAt < 0 {
		return
	}
	if n := len(s.timeIndex); n > 0 && s.timeIndex[n-1].ts >= s.maxTimestamp {
		return
	}
	s.timeIndex = append(s.timeIndex, timeEntry{ts: s.maxTimestamp, rel: uint32(s.maxTimestampAt - s.base)})
}

// rebuild re-derives the indexes of the first end bytes by walking every
// batch header, and checks that the batches are contiguous from base.
func (s *segment) rebuild(end int64, interval int32) error {
	s.size, s.next, s.index, s.timeIndex, s.sinceIndex = 0, s.base, nil, nil, 0
	s.maxTimestamp, s.maxTimestampAt = math.MinInt64, -1
	sc := newBatchScanner(s.log, 0, end, 256<<10)
	for {
		h, pos, ok, err := sc.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if h.baseOffset != s.next {
			return fmt.Errorf("batch at position %d has base offset %d, want %d", pos, h.baseOffset, s.next)
		}
		s.track(h, pos, interval)
	}
}

// seal completes the time index with the segment's maximum, so that a
// sealed segment's last time entry always names its largest timestamp, and
// writes both index files. They are not fsynced here; a SyncJob does that
// before the log's durable position moves past this segment.
func (s *segment) seal(dir string) error {
	s.appendTimeEntry()
	return s.writeIndexFiles(dir)
}

func (s *segment) writeIndexFiles(dir string) error {
	if err := os.WriteFile(segmentPath(dir, s.base, ".index"), encodeOffsetIndex(s.index), 0o644); err != nil {
		return err
	}
	return os.WriteFile(segmentPath(dir, s.base, ".timeindex"), encodeTimeIndex(s.timeIndex), 0o644)
}

// loadSealed sets up a sealed segment of the given size from its index
// files, verifying them cheaply: the last index entry must land on the batch
// it names, and the tail after it must be shorter than an index interval and
// agree with the time index. Anything else means the files are missing,
// short or foreign, and the indexes are rebuilt by scanning (and rewritten).
func (s *segment) loadSealed(dir string, size int64, interval int32) error {
	if err := s.loadIndexFiles(dir, size, interval); err == nil {
		return nil
	}
	if err := s.rebuild(size, interval); err != nil {
		return err
	}
	if err := s.seal(dir); err != nil {
		return fmt.Errorf("rewrite indexes: %w", err)
	}
	return nil
}

var errIndexStale = errors.New("index does not match the segment")

func (s *segment) loadIndexFiles(dir string, size int64, interval int32) error {
	ib, err := os.ReadFile(segmentPath(dir, s.base, ".index"))
	if err != nil {
		return err
	}
	tb, err := os.ReadFile(segmentPath(dir, s.base, ".timeindex"))
	if err != nil {
		return err
	}
	idx, err := decodeOffsetIndex(ib, size)
	if err != nil {
		return err
	}
	tidx, err := decodeTimeIndex(tb)
	if err != nil {
		return err
	}
	if size > 0 && len(tidx) == 0 {
		return errIndexStale
	}
	start, want := int64(0), s.base
	if n := len(idx); n > 0 {
		start, want = int64(idx[n-1].pos), s.base+int64(idx[n-1].rel)
	}
	tailMax := int64(math.MinInt64)
	next := s.base
	sc := newBatchScanner(s.log, start, size, 64<<10)
	for {
		h, pos, ok, err := sc.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if h.baseOffset != want || (pos > start && pos-start >= int64(interval)) {
			return errIndexStale
		}
		tailMax = max(tailMax, h.maxTimestamp)
		want = h.lastOffset + 1
		next = want
	}
	if size > 0 {
		last := tidx[len(tidx)-1]
		if last.ts < tailMax || s.base+int64(last.rel) >= next {
			return errIndexStale
		}
		s.maxTimestamp, s.maxTimestampAt = last.ts, s.base+int64(last.rel)
	}
	s.index, s.timeIndex, s.size, s.next = idx, tidx, size, next
	return nil
}

// view captures what a reader may see of the segment now. The index slices
// are capped at their length so that the writer's appends can never write
// into memory the view covers.
func (s *segment) view() segmentView {
	return segmentView{
		base:           s.base,
		log:            s.log,
		size:           s.size,
		next:           s.next,
		index:          s.index[:len(s.index):len(s.index)],
		timeIndex:      s.timeIndex[:len(s.timeIndex):len(s.timeIndex)],
		maxTimestamp:   s.maxTimestamp,
		maxTimestampAt: s.maxTimestampAt,
	}
}

// readBatchAt returns the whole batch that starts at pos.
func readBatchAt(f *os.File, pos, end int64) ([]byte, error) {
	if end-pos < batchHeaderLen {
		return nil, fmt.Errorf("torn batch at position %d", pos)
	}
	var hb [batchFieldsLen]byte
	if _, err := f.ReadAt(hb[:], pos); err != nil {
		return nil, err
	}
	h, err := parseBatchHeader(hb[:])
	if err != nil {
		return nil, err
	}
	if pos+h.size > end {
		return nil, fmt.Errorf("torn batch at position %d", pos)
	}
	b := make([]byte, h.size)
	copy(b, hb[:])
	if _, err := f.ReadAt(b[batchFieldsLen:], pos+batchFieldsLen); err != nil {
		return nil, err
	}
	return b, nil
}
