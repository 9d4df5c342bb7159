package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// Log compaction (cleanup.policy=compact) rewrites sealed segments keeping,
// for each key, only the record with the highest offset in the whole log.
// Records with a nil key and tombstones (nil value) are kept. Offsets never
// change and the log start offset never moves. Transactions
// (compaction_txn.go): a transaction's records count only once it
// committed, an aborted one's are removed; nothing from the first open
// one on is compacted; commit markers go with the last record of their
// transaction, abort markers stay.
//
// Batch layout. A sealed segment must stay a contiguous run of batches from
// its base offset to its next offset (loading checks it), so a rewritten
// segment covers the same offsets as the original: each kept batch keeps
// its base offset and is stretched (lastOffsetDelta) over the batches
// dropped after it, as Kafka keeps a v2 batch's base and last offsets. The
// first kept batch of a segment is pulled back to the segment base when it
// is rebuilt anyway; otherwise (or when nothing is left at all) an empty
// batch (numRecords 0) fills the leading gap, as Kafka's cleaner leaves
// empty batches. Rebuilt batches keep the original header fields
// (attributes, timestamps, producer id/epoch, base sequence, leader epoch)
// and get new offset deltas, length, count and CRC32C; an empty batch
// is neither a control nor a transactional batch (see emptyBatch).
// Compressed batches and the markers kept stay whole (only their
// lastOffsetDelta may be stretched); the records of compressed batches
// still count as the latest value of their keys.
//
// Crash safety. The new segment is written as <base>.log.cleaned (with
// <base>.index.cleaned and <base>.timeindex.cleaned) and fsynced; the old
// index files are removed and the directory synced, the log renamed over
// the old one (atomic: the commit point) and the directory synced, then
// the index files renamed. A crash before the rename leaves the old log
// (its indexes rebuilt by scanning if gone); after it, the new log, with
// indexes rebuilt if their rename did not happen. RemoveCompactionLeftovers,
// called before opening the log, deletes the .cleaned files left behind.
//
// Only segments below upTo, a segment base the owner recorded durably as
// its position's SegmentBase, are compacted: a reopen at an older position
// would truncate and re-append that segment from the raft log. Readers
// holding older views keep reading the replaced file through its open fd,
// which is closed FileDeleteDelay later like a retention-deleted segment's.

const cleanedSuffix = ".cleaned"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// CompactionResult reports what Compact did.
type CompactionResult struct {
	Records    int64 // records in the segments considered, markers included
	Superseded int64 // of which a later record has the same key
	Aborted    int64 // of which in an aborted transaction
	Markers    int64 // of which commit markers with nothing left to commit
	Segments   int   // segments rewritten
	Removed    int64 // records removed, markers included
}

// RemoveCompactionLeftovers deletes the *.cleaned files an interrupted
// compaction left in dir. Call it before OpenPartitionLog.
func RemoveCompactionLeftovers(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), cleanedSuffix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// Compact compacts the sealed segments that end at or below upTo (and are
// durable) when at least minDirtyRatio of their records are superseded by
// a later record with the same key anywhere in the log. It publishes a new
// view when it rewrote anything. Runs on the writer goroutine and also
// closes the files of segments replaced or deleted more than
// FileDeleteDelay ago.
func (l *PartitionLog) Compact(upTo int64, minDirtyRatio float64) (CompactionResult, error) {
	var res CompactionResult
	if l.closed {
		return res, errLogClosed
	}
	if l.failed != nil {
		return res, l.failed
	}
	now := time.Now()
	defer l.closeExpired(now)
	upTo = min(upTo, l.syncedBase.Load())
	n := 0
	for n < len(l.sealed) && l.sealed[n].next <= upTo {
		n++
	}
	if n == 0 {
		return res, nil
	}
	idx, err := l.buildIndex()
	if err != nil {
		return res, fmt.Errorf("partition log %s: compaction: %w", l.dir, err)
	}
	for n > 0 && l.sealed[n-1].next > idx.firstOpen {
		n-- // an open transaction's segments and those after it wait
	}
	if n == 0 {
		return res, nil
	}
	dirty := make([]int64, n)
	for i, s := range l.sealed[:n] {
		err := scanBatches(s, func(b []byte, h protocol.BatchHeader) error {
			if h.Control() {
				res.Records++
				if idx.dropMarkers[h.BaseOffset] {
					dirty[i]++
					res.Markers++
				}
				return nil
			}
			if h.Codec() != protocol.CodecNone {
				res.Records += int64(max(h.NumRecords, 0))
				return nil
			}
			recs, err := parseRawRecords(b, h)
			if err != nil {
				return err
			}
			aborted := h.Transactional() && idx.txns[h.BaseOffset] == txnAborted
			for _, r := range recs {
				res.Records++
				if !idx.keep(h, r.offset, r.key) {
					dirty[i]++
					if aborted {
						res.Aborted++
					} else {
						res.Superseded++
					}
				}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("partition log %s: compaction: segment %020d: %w", l.dir, s.base, err)
		}
	}
	removable := res.Superseded + res.Aborted + res.Markers
	if removable == 0 || float64(removable) < minDirtyRatio*float64(res.Records) {
		return res, nil
	}
	sealed, views := slices.Clone(l.sealed), slices.Clone(l.sealedViews)
	var errs []error
	for i, s := range l.sealed[:n] {
		if dirty[i] == 0 {
			continue
		}
		ns, removed, err := l.compactSegment(s, idx)
		if ns == nil {
			errs = append(errs, err)
			break
		}
		if err != nil {
			errs = append(errs, err) // swapped in, but its index files are not in place
		}
		sealed[i], views[i] = ns, ns.view()
		l.sealedBytes += ns.size - s.size
		l.retired = append(l.retired, &retiredSegment{seg: s, at: now, unlinked: true})
		res.Segments++
		res.Removed += removed
	}
	if res.Segments > 0 {
		l.sealed, l.sealedViews = sealed, views
		l.publish(false)
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("partition log %s: compaction: %w", l.dir, err)
	}
	return res, nil
}

// scanBatches reads every batch of a segment in order.
func scanBatches(s *segment, fn func(b []byte, h protocol.BatchHeader) error) error {
	sc := newBatchScanner(s.log, 0, s.size, 64<<10)
	for {
		_, pos, ok, err := sc.next()
		if err != nil || !ok {
			return err
		}
		b, err := readBatchAt(s.log, pos, s.size)
		if err != nil {
			return err
		}
		h, err := protocol.ParseBatchHeader(b)
		if err != nil {
			return err
		}
		if err := fn(b, h); err != nil {
			return err
		}
	}
}

// rawRecord is one record of an uncompressed batch, in pieces that let it
// be re-encoded with another offset delta.
type rawRecord struct {
	offset int64
	key    []byte // nil for a nil key
	head   []byte // attributes and timestampDelta, as stored
	tail   []byte // key, value and headers, as stored
}

func parseRawRecords(b []byte, h protocol.BatchHeader) ([]rawRecord, error) {
	bad := fmt.Errorf("batch at offset %d: malformed records", h.BaseOffset)
	body := b[protocol.BatchHeaderSize:]
	if h.NumRecords < 0 || int(h.NumRecords) > len(body) {
		return nil, bad
	}
	out := make([]rawRecord, 0, h.NumRecords)
	for range h.NumRecords {
		n, k := binary.Varint(body)
		if k <= 0 || n < 1 || int64(len(body)-k) < n {
			return nil, bad
		}
		rec := body[k : k+int(n)]
		body = body[k+int(n):]
		_, t := binary.Varint(rec[1:]) // timestampDelta
		if t <= 0 {
			return nil, bad
		}
		delta, d := binary.Varint(rec[1+t:])
		if d <= 0 {
			return nil, bad
		}
		r := rawRecord{offset: h.BaseOffset + delta, head: rec[:1+t], tail: rec[1+t+d:]}
		klen, kk := binary.Varint(r.tail)
		if kk <= 0 || klen > int64(len(r.tail)-kk) {
			return nil, bad
		}
		if klen >= 0 {
			r.key = r.tail[kk : kk+int(klen)]
		}
		out = append(out, r)
	}
	return out, nil
}

// keptBatch is a batch of the old segment that stays, whole or in part.
type keptBatch struct {
	base, last int64
	raw        []byte      // the batch as stored
	recs       []rawRecord // kept records; nil when the batch stays whole
	rebuildOK  bool        // uncompressed data batch: may be re-encoded
}

// compactSegment writes the compacted copy of s and swaps it in on disk.
// A nil segment means the old one is still in place (err says why); a
// non-nil one is the new segment, with err set if its index files could
// not be put in place (they are rebuilt when the log is reopened).
func (l *PartitionLog) compactSegment(s *segment, idx *compactIndex) (*segment, int64, error) {
	var kept []keptBatch
	var filler []byte // header of the first dropped batch, for empty batches
	var removed int64
	err := scanBatches(s, func(b []byte, h protocol.BatchHeader) error {
		kb := keptBatch{base: h.BaseOffset, last: h.BaseOffset + int64(h.LastOffsetDelta), raw: b}
		if h.Control() && idx.dropMarkers[h.BaseOffset] {
			removed++
			if filler == nil {
				filler = b[:protocol.BatchHeaderSize]
			}
			return nil
		}
		if h.Codec() != protocol.CodecNone || h.Control() {
			kept = append(kept, kb)
			return nil
		}
		recs, err := parseRawRecords(b, h)
		if err != nil {
			return err
		}
		kb.rebuildOK = true
		keep := recs[:0:0]
		for _, r := range recs {
			if idx.keep(h, r.offset, r.key) {
				keep = append(keep, r)
			}
		}
		removed += int64(len(recs) - len(keep))
		if len(keep) == 0 {
			if filler == nil {
				filler = b[:protocol.BatchHeaderSize]
			}
			return nil
		}
		if len(keep) < len(recs) {
			kb.recs = keep
		}
		kept = append(kept, kb)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("segment %020d: %w", s.base, err)
	}

	var out [][]byte
	for i, kb := range kept {
		base, last := kb.base, s.next-1
		if i+1 < len(kept) {
			last = kept[i+1].base - 1
		}
		if i == 0 && base > s.base {
			if kb.rebuildOK {
				base = s.base
			} else {
				out = append(out, emptyBatch(filler, s.base, base-1))
			}
		}
		switch {
		case kb.recs != nil || base != kb.base:
			recs := kb.recs
			if recs == nil {
				h, _ := protocol.ParseBatchHeader(kb.raw)
				recs, _ = parseRawRecords(kb.raw, h) // parsed fine above
			}
			out = append(out, rebuildBatch(kb.raw[:protocol.BatchHeaderSize], base, last, recs))
		case last != kb.last:
			b := slices.Clone(kb.raw)
			binary.BigEndian.PutUint32(b[23:], uint32(last-base))
			binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crcTable))
			out = append(out, b)
		default:
			out = append(out, kb.raw)
		}
	}
	if len(kept) == 0 {
		out = append(out, emptyBatch(filler, s.base, s.next-1))
	}
	ns, err := l.writeCleaned(s, out)
	if err != nil {
		return nil, 0, fmt.Errorf("segment %020d: %w", s.base, err)
	}
	if committed, err := l.swapCleaned(s, ns); err != nil {
		if committed {
			return ns, removed, fmt.Errorf("segment %020d: %w", s.base, err)
		}
		ns.log.Close()
		l.removeCleaned(s.base)
		return nil, 0, fmt.Errorf("segment %020d: %w", s.base, err)
	}
	return ns, removed, nil
}

// rebuildBatch encodes recs as a batch over [base, last] with the other
// header fields of hdr.
func rebuildBatch(hdr []byte, base, last int64, recs []rawRecord) []byte {
	b := make([]byte, protocol.BatchHeaderSize, protocol.BatchHeaderSize+64*len(recs))
	copy(b, hdr)
	var body []byte
	for _, r := range recs {
		body = append(body[:0], r.head...)
		body = binary.AppendVarint(body, r.offset-base)
		body = append(body, r.tail...)
		b = binary.AppendVarint(b, int64(len(body)))
		b = append(b, body...)
	}
	return finishBatch(b, base, last, len(recs))
}

// emptyBatch is a batch with no records covering [base, last], with the
// header fields of hdr (a dropped batch's) but neither the control nor the
// transactional attribute: readers take a control batch for a marker and
// read its one record, and a transactional batch opens its producer's
// transaction until a marker that may be gone.
func emptyBatch(hdr []byte, base, last int64) []byte {
	b := slices.Clone(hdr[:protocol.BatchHeaderSize])
	attrs := binary.BigEndian.Uint16(b[attributesOffset:])
	binary.BigEndian.PutUint16(b[attributesOffset:], attrs&^(attrControl|attrTransactional))
	return finishBatch(b, base, last, 0)
}

// Where a batch's attributes are, and their bits for transactions
// (Kafka's DefaultRecordBatch).
const (
	attributesOffset         = 21
	attrTransactional uint16 = 0x10
	attrControl       uint16 = 0x20
)

func finishBatch(b []byte, base, last int64, n int) []byte {
	binary.BigEndian.PutUint64(b[0:], uint64(base))
	binary.BigEndian.PutUint32(b[batchLengthOffset:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[23:], uint32(last-base))
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crcTable))
	return b
}

// writeCleaned writes batches as <base>.log.cleaned with its index files,
// all fsynced, and returns the segment open on it.
func (l *PartitionLog) writeCleaned(old *segment, batches [][]byte) (*segment, error) {
	l.removeCleaned(old.base)
	f, err := os.OpenFile(segmentPath(l.dir, old.base, ".log"+cleanedSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	ns := newSegment(old.base, f)
	err = func() error {
		for _, b := range batches {
			h, err := parseBatchHeader(b)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt(b, ns.size); err != nil {
				return err
			}
			ns.track(h, ns.size, l.opts.IndexIntervalBytes)
		}
		if ns.next != old.next {
			return fmt.Errorf("compacted segment ends at %d, want %d", ns.next, old.next)
		}
		ns.appendTimeEntry()
		for _, x := range []struct {
			ext  string
			data []byte
		}{{".index", encodeOffsetIndex(ns.index)}, {".timeindex", encodeTimeIndex(ns.timeIndex)}} {
			if err := os.WriteFile(segmentPath(l.dir, old.base, x.ext+cleanedSuffix), x.data, 0o644); err != nil {
				return err
			}
			if err := syncPath(segmentPath(l.dir, old.base, x.ext+cleanedSuffix)); err != nil {
				return err
			}
		}
		if err := f.Sync(); err != nil {
			return err
		}
		// Keep the modification time, which retention reads when no batch
		// carries a timestamp.
		if fi, err := old.log.Stat(); err == nil {
			_ = os.Chtimes(f.Name(), fi.ModTime(), fi.ModTime())
		}
		return nil
	}()
	if err != nil {
		f.Close()
		l.removeCleaned(old.base)
		return nil, err
	}
	return ns, nil
}

// swapCleaned puts the .cleaned files of ns in place of old's. The rename
// of the log is the commit point (committed); ns.log, opened under the
// .cleaned name, follows the rename.
func (l *PartitionLog) swapCleaned(old, ns *segment) (committed bool, err error) {
	for _, ext := range []string{".index", ".timeindex"} {
		if err := os.Remove(segmentPath(l.dir, old.base, ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
	}
	if err := syncPath(l.dir); err != nil {
		return false, err
	}
	if err := os.Rename(segmentPath(l.dir, old.base, ".log"+cleanedSuffix), segmentPath(l.dir, old.base, ".log")); err != nil {
		return false, err
	}
	errs := []error{syncPath(l.dir)}
	for _, ext := range []string{".index", ".timeindex"} {
		errs = append(errs, os.Rename(segmentPath(l.dir, old.base, ext+cleanedSuffix), segmentPath(l.dir, old.base, ext)))
	}
	errs = append(errs, syncPath(l.dir))
	return true, errors.Join(errs...)
}

func (l *PartitionLog) removeCleaned(base int64) {
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		_ = os.Remove(segmentPath(l.dir, base, ext+cleanedSuffix))
	}
}
