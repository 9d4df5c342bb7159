package storage

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// The sparse indexes of a segment. Both are kept in memory as plain slices
// that only ever grow at the end while the segment is active: a read view
// captures a prefix (len == cap) so the writer's later appends never touch
// memory a reader can see, which is what lets readers go without locks.
//
// On disk (written when a segment is sealed or the log closed) they use
// Kafka's entry layouts, big-endian:
//
//	.index      relOffset uint32 | position uint32         (8 bytes)
//	.timeindex  timestamp int64  | relOffset uint32         (12 bytes)

const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

// offsetEntry says the batch whose base offset is segment base + rel starts
// at byte pos of the segment file.
type offsetEntry struct {
	rel uint32
	pos uint32
}

// timeEntry says that every batch of the segment up to the one indexed at
// the same moment has a maxTimestamp <= ts, and that the first batch to reach
// ts has base offset segment base + rel.
type timeEntry struct {
	ts  int64
	rel uint32
}

// lookupOffset returns the file position to start scanning from for rel:
// the position of the last indexed batch whose base is <= rel, or 0.
func lookupOffset(idx []offsetEntry, rel uint32) int64 {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].rel > rel })
	if i == 0 {
		return 0
	}
	return int64(idx[i-1].pos)
}

// lookupTime returns the relative offset from which a batch with
// maxTimestamp >= ts may start, and whether the index ruled anything out.
// Entries with ts below the target prove that every batch up to their
// indexed moment is too old, so the scan can begin at the batch of the last
// such entry (conservative: that batch itself is skipped by the scan).
func lookupTime(idx []timeEntry, ts int64) (rel uint32, ok bool) {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].ts >= ts })
	if i == 0 {
		return 0, false
	}
	return idx[i-1].rel, true
}

func encodeOffsetIndex(idx []offsetEntry) []byte {
	b := make([]byte, len(idx)*offsetEntrySize)
	for i, e := range idx {
		binary.BigEndian.PutUint32(b[i*offsetEntrySize:], e.rel)
		binary.BigEndian.PutUint32(b[i*offsetEntrySize+4:], e.pos)
	}
	return b
}

func encodeTimeIndex(idx []timeEntry) []byte {
	b := make([]byte, len(idx)*timeEntrySize)
	for i, e := range idx {
		binary.BigEndian.PutUint64(b[i*timeEntrySize:], uint64(e.ts))
		binary.BigEndian.PutUint32(b[i*timeEntrySize+8:], e.rel)
	}
	return b
}

// decodeOffsetIndex parses and checks an .index file for a segment of size
// bytes. Any inconsistency is an error so that the caller rebuilds the index
// by scanning instead of trusting a torn or foreign file.
func decodeOffsetIndex(b []byte, size int64) ([]offsetEntry, error) {
	if len(b)%offsetEntrySize != 0 {
		return nil, fmt.Errorf("index length %d is not a multiple of %d", len(b), offsetEntrySize)
	}
	idx := make([]offsetEntry, len(b)/offsetEntrySize)
	for i := range idx {
		e := offsetEntry{
			rel: binary.BigEndian.Uint32(b[i*offsetEntrySize:]),
			pos: binary.BigEndian.Uint32(b[i*offsetEntrySize+4:]),
		}
		if int64(e.pos) >= size {
			return nil, fmt.Errorf("index entry %d points at %d, past the segment end %d", i, e.pos, size)
		}
		// Position 0 is never indexed: the scan starts there anyway.
		if e.pos == 0 || (i > 0 && (e.rel <= idx[i-1].rel || e.pos <= idx[i-1].pos)) {
			return nil, fmt.Errorf("index entry %d (%d@%d) out of order", i, e.rel, e.pos)
		}
		idx[i] = e
	}
	return idx, nil
}

func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("time index length %d is not a multiple of %d", len(b), timeEntrySize)
	}
	idx := make([]timeEntry, len(b)/timeEntrySize)
	for i := range idx {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			rel: binary.BigEndian.Uint32(b[i*timeEntrySize+8:]),
		}
		if i > 0 && (e.ts <= idx[i-1].ts || e.rel <= idx[i-1].rel) {
			return nil, fmt.Errorf("time index entry %d (%d@%d) out of order", i, e.ts, e.rel)
		}
		idx[i] = e
	}
	return idx, nil
}
