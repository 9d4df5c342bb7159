package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/chronik-actor/chronik-actor/protocol"
)

var compactSegments = LogOptions{SegmentBytes: 250, IndexIntervalBytes: 100}

type kv struct {
	off        int64
	key, value string
	nilKey     bool
	tombstone  bool
}

// kvBatch is an uncompressed batch at base with a producer id, epoch and
// sequence set, so that compaction must carry them over.
func kvBatch(base, ts int64, seq int32, recs []protocol.Record) []byte {
	b := protocol.BuildBatch(recs, ts)
	binary.BigEndian.PutUint64(b[43:], 77)          // producer id
	binary.BigEndian.PutUint16(b[51:], 3)           // producer epoch
	binary.BigEndian.PutUint32(b[53:], uint32(seq)) // base sequence
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crcTable))
	protocol.SetBaseOffset(b, base)
	return b
}

// fillCompact appends batches of 3 records over 5 keys, so every key is
// overwritten across segments, with a nil-key record and a tombstone.
func fillCompact(t *testing.T, tl *testLog, batches int) []kv {
	t.Helper()
	var all []kv
	for i := range batches {
		base := tl.l.NextOffset()
		var recs []protocol.Record
		for j := range 3 {
			off := base + int64(j)
			r := kv{off: off, key: fmt.Sprintf("k%d", (i*3+j)%5), value: fmt.Sprintf("v%d", off)}
			pr := protocol.Record{Key: []byte(r.key), Value: []byte(r.value)}
			switch {
			case i == 4 && j == 1:
				r.nilKey, r.key, pr.Key = true, "", nil
			case i == 6 && j == 2:
				r.tombstone, r.value, pr.Value = true, "", nil
			}
			recs = append(recs, pr)
			all = append(all, r)
		}
		b := kvBatch(base, 1000+int64(i), int32(i*3), recs)
		if err := tl.l.Append(b); err != nil {
			t.Fatal(err)
		}
		tl.batches = append(tl.batches, b)
	}
	tl.l.Publish()
	if err := tl.l.PrepareSync().Run(); err != nil {
		t.Fatal(err)
	}
	return all
}

// readRecords reads every record through v, checking each batch's CRC and
// that its header fields are those of the original batch it came from.
func readRecords(t *testing.T, tl *testLog, v *ReadView) []kv {
	t.Helper()
	data := readAll(t, v, 1<<20)
	var out []kv
	for len(data) > 0 {
		h, err := protocol.ParseBatchHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		b := data[:h.Length+12]
		data = data[h.Length+12:]
		if crc := crc32.Checksum(b[21:], crcTable); crc != h.CRC {
			t.Fatalf("batch %d: CRC %x, want %x", h.BaseOffset, h.CRC, crc)
		}
		recs, err := protocol.Records(b)
		if err != nil {
			t.Fatal(err)
		}
		if int(h.NumRecords) != len(recs) {
			t.Fatalf("batch %d: %d records, count says %d", h.BaseOffset, len(recs), h.NumRecords)
		}
		first := h.BaseOffset
		if len(recs) > 0 {
			first = recs[0].Offset
		}
		_, ob := tl.batchFor(first)
		oh, _ := protocol.ParseBatchHeader(ob)
		if h.BaseTimestamp != oh.BaseTimestamp || h.MaxTimestamp != oh.MaxTimestamp || h.ProducerID != oh.ProducerID ||
			h.ProducerEpoch != oh.ProducerEpoch || h.BaseSequence != oh.BaseSequence || h.Attributes != oh.Attributes {
			t.Fatalf("batch %d: header %+v, original %+v", h.BaseOffset, h, oh)
		}
		for _, r := range recs {
			if r.Offset < h.BaseOffset || r.Offset > h.BaseOffset+int64(h.LastOffsetDelta) {
				t.Fatalf("record %d outside its batch %d+%d", r.Offset, h.BaseOffset, h.LastOffsetDelta)
			}
			out = append(out, kv{off: r.Offset, key: string(r.Key), value: string(r.Value), nilKey: r.Key == nil, tombstone: r.Value == nil})
		}
	}
	return out
}

// wantCompacted is all with superseded records dropped, except those at or
// above keepFrom (the active segment).
func wantCompacted(all []kv, keepFrom int64) []kv {
	latest := map[string]int64{}
	for _, r := range all {
		if !r.nilKey {
			latest[r.key] = r.off
		}
	}
	var out []kv
	for _, r := range all {
		if r.nilKey || r.off >= keepFrom || latest[r.key] == r.off {
			out = append(out, r)
		}
	}
	return out
}

func checkRecords(t *testing.T, got, want []kv) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestCompactionKeepsLatest(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, compactSegments, LogPosition{})
	defer func() { tl.l.Close() }()
	all := fillCompact(t, tl, 12)
	if tl.l.SegmentCount() < 4 {
		t.Fatalf("%d segments, want several", tl.l.SegmentCount())
	}
	old := tl.l.View()
	oldData := readAll(t, old, 1<<20)
	checkRecords(t, readRecords(t, tl, old), all)
	pos := tl.l.Position()

	// Nothing below upTo, or too little dirt: nothing happens.
	if res, err := tl.l.Compact(0, 0.5); err != nil || res.Segments != 0 {
		t.Fatalf("Compact(0): %+v, %v", res, err)
	}
	if res, err := tl.l.Compact(pos.SegmentBase, 1); err != nil || res.Segments != 0 {
		t.Fatalf("Compact ratio 1: %+v, %v", res, err)
	}
	if tl.l.View() != old {
		t.Fatal("a compaction that did nothing published a view")
	}

	res, err := tl.l.Compact(pos.SegmentBase, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments == 0 || res.Removed == 0 || res.Removed != res.Superseded {
		t.Fatalf("compaction result %+v", res)
	}
	want := wantCompacted(all, pos.SegmentBase)
	if int64(len(all)-len(want)) != res.Removed {
		t.Fatalf("removed %d records, want %d", res.Removed, len(all)-len(want))
	}
	v := tl.l.View()
	if v == old {
		t.Fatal("no new view")
	}
	if v.LogStartOffset() != 0 || v.HighWatermark() != pos.NextOffset || tl.l.Position() != pos {
		t.Fatalf("offsets moved: start %d hw %d pos %+v, was %+v", v.LogStartOffset(), v.HighWatermark(), tl.l.Position(), pos)
	}
	if v.SizeBytes() >= old.SizeBytes() {
		t.Fatalf("size %d, was %d", v.SizeBytes(), old.SizeBytes())
	}
	checkRecords(t, readRecords(t, tl, v), want)
	// Every offset still reads: a fetch from the middle of a gap gets the
	// batch that covers it.
	for off := int64(0); off < v.HighWatermark(); off++ {
		b, err := v.Read(off, 1)
		if err != nil || len(b) == 0 {
			t.Fatalf("Read(%d): %d bytes, %v", off, len(b), err)
		}
	}
	// The old view still reads the old files.
	if got := readAll(t, old, 1<<20); !bytes.Equal(got, oldData) {
		t.Fatal("old view reads other bytes after compaction")
	}
	if m := segmentFiles(t, dir, cleanedSuffix); len(m) != 0 {
		t.Fatalf("leftover files %v", m)
	}
	// Compacting again finds nothing to do.
	if res, err := tl.l.Compact(pos.SegmentBase, 0.01); err != nil || res.Segments != 0 || res.Superseded != 0 {
		t.Fatalf("second compaction: %+v, %v", res, err)
	}

	// More writes overwrite keys again; the next compaction reaches them.
	all = append(all, fillCompact(t, tl, 8)...)
	pos = tl.l.Position()
	if _, err := tl.l.Compact(pos.SegmentBase, 0.5); err != nil {
		t.Fatal(err)
	}
	want = wantCompacted(all, pos.SegmentBase)
	checkRecords(t, readRecords(t, tl, tl.l.View()), want)

	// Reopen: the index files written by compaction load and agree.
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := OpenPartitionLog(dir, compactSegments, pos)
	if err != nil {
		t.Fatal(err)
	}
	tl.l = l
	checkRecords(t, readRecords(t, tl, l.View()), want)
	for _, s := range l.sealed {
		ib, err := os.ReadFile(segmentPath(dir, s.base, ".index"))
		if err != nil {
			t.Fatal(err)
		}
		idx, _ := decodeOffsetIndex(ib, s.size)
		if len(idx) != len(s.index) {
			t.Fatalf("segment %d: index file has %d entries, loaded %d", s.base, len(idx), len(s.index))
		}
	}
	checkTimestamps(t, l.View(), batchesOf(t, l.View()))
}

// batchesOf splits everything v holds into batches.
func batchesOf(t *testing.T, v *ReadView) [][]byte {
	data := readAll(t, v, 1<<20)
	var out [][]byte
	for len(data) > 0 {
		h, _ := parseBatchHeader(data)
		out = append(out, data[:h.size])
		data = data[h.size:]
	}
	return out
}

// A segment whose every record is superseded becomes one empty batch over
// its offsets; a leading dropped batch is covered by the first kept one.
func TestCompactionEmptiesSegment(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, LogOptions{SegmentBytes: 1}, LogPosition{}) // one batch per segment
	defer func() { tl.l.Close() }()
	var all []kv
	for i := range 4 {
		recs := []protocol.Record{{Key: []byte("a"), Value: []byte{byte(i)}}, {Key: []byte("b"), Value: []byte{byte(i)}}}
		if i == 2 {
			recs[1].Key = []byte("c") // c survives, at offset 5
		}
		b := kvBatch(tl.l.NextOffset(), int64(i), 0, recs)
		for j, r := range recs {
			all = append(all, kv{off: tl.l.NextOffset() + int64(j), key: string(r.Key), value: string(r.Value)})
		}
		if err := tl.l.Append(b); err != nil {
			t.Fatal(err)
		}
		tl.batches = append(tl.batches, b)
	}
	tl.l.Publish()
	if err := tl.l.PrepareSync().Run(); err != nil {
		t.Fatal(err)
	}
	pos := tl.l.Position()
	res, err := tl.l.Compact(pos.SegmentBase, 0)
	if err != nil || res.Segments != 3 {
		t.Fatalf("%+v, %v", res, err)
	}
	v := tl.l.View()
	checkRecords(t, readRecords(t, tl, v), wantCompacted(all, pos.SegmentBase))
	bs := batchesOf(t, v)
	if len(bs) != 4 || len(bs[0]) != batchHeaderLen || len(bs[1]) != batchHeaderLen {
		t.Fatalf("batches %d, sizes %d %d: want empty batches for segments 0 and 2", len(bs), len(bs[0]), len(bs[1]))
	}
	h, _ := protocol.ParseBatchHeader(bs[2])
	if h.BaseOffset != 4 || h.LastOffsetDelta != 1 || h.NumRecords != 1 {
		t.Fatalf("segment 4: %+v, want the batch over 4..5 with one record", h)
	}
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := OpenPartitionLog(dir, LogOptions{SegmentBytes: 1}, pos)
	if err != nil {
		t.Fatal(err)
	}
	tl.l = l
	checkRecords(t, readRecords(t, tl, l.View()), wantCompacted(all, pos.SegmentBase))
}

// Segments above upTo, or not yet durable (above the last sync), are left
// alone.
func TestCompactionSkipsUnsynced(t *testing.T) {
	tl := openTestLog(t, t.TempDir(), compactSegments, LogPosition{})
	defer tl.l.Close()
	fillCompact(t, tl, 6)
	upTo := tl.l.Position().SegmentBase
	fillCompact(t, tl, 6)
	untouched := func(from int64, files map[int64]*os.File) {
		t.Helper()
		n := 0
		for _, s := range tl.l.sealed {
			if s.base >= from {
				n++
				if files[s.base] != s.log {
					t.Fatalf("segment %d at or above %d was compacted", s.base, from)
				}
			}
		}
		if n == 0 {
			t.Fatalf("no segment at or above %d", from)
		}
	}
	files := func() map[int64]*os.File {
		m := map[int64]*os.File{}
		for _, s := range tl.l.sealed {
			m[s.base] = s.log
		}
		return m
	}
	before := files()
	res, err := tl.l.Compact(upTo, 0)
	if err != nil || res.Segments == 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	untouched(upTo, before)

	for range 12 { // appended, not synced: rolls segments past syncedBase
		b := kvBatch(tl.l.NextOffset(), 0, 0, []protocol.Record{{Key: []byte("k0"), Value: []byte("x")}, {Key: []byte("k1"), Value: []byte("y")}})
		if err := tl.l.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	tl.l.Publish()
	synced := tl.l.syncedBase.Load()
	before = files()
	if _, err := tl.l.Compact(tl.l.Position().SegmentBase, 0); err != nil {
		t.Fatal(err)
	}
	untouched(synced, before)
}

// An interrupted compaction leaves .cleaned files (and perhaps no index
// files): they are removed and the log opens whole.
func TestCompactionCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, compactSegments, LogPosition{})
	all := fillCompact(t, tl, 12)
	pos := tl.l.Position()
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
	// Crash after the compacted copy was written and the old indexes
	// removed, before the rename.
	base := mustBase(t, filepath.Base(segmentFiles(t, dir, ".log")[1]))
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		if err := os.WriteFile(segmentPath(dir, base, ext+cleanedSuffix), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, ext := range []string{".index", ".timeindex"} {
		if err := os.Remove(segmentPath(dir, base, ext)); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveCompactionLeftovers(dir); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*"+cleanedSuffix)); len(m) != 0 {
		t.Fatalf("leftovers %v", m)
	}
	l, err := OpenPartitionLog(dir, compactSegments, pos)
	if err != nil {
		t.Fatal(err)
	}
	tl.l = l
	checkRecords(t, readRecords(t, tl, l.View()), all)
	if _, err := os.Stat(segmentPath(dir, base, ".index")); err != nil {
		t.Fatalf("index not rebuilt: %v", err)
	}
	// Compaction works on the reopened log, and a crash after the log
	// rename but before the index renames (index files missing, .cleaned
	// ones left) reopens to the compacted data.
	if err := l.PrepareSync().Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Compact(pos.SegmentBase, 0.5); err != nil {
		t.Fatal(err)
	}
	want := wantCompacted(all, pos.SegmentBase)
	checkRecords(t, readRecords(t, tl, l.View()), want)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".index", ".timeindex"} {
		if err := os.Rename(segmentPath(dir, base, ext), segmentPath(dir, base, ext+cleanedSuffix)); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveCompactionLeftovers(dir); err != nil {
		t.Fatal(err)
	}
	l, err = OpenPartitionLog(dir, compactSegments, pos)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tl.l = l
	checkRecords(t, readRecords(t, tl, l.View()), want)
	if err := RemoveCompactionLeftovers(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("missing dir: %v", err)
	}
}
