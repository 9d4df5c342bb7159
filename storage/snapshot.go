package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/raft/v3/raftpb"
)

// What a raft snapshot of a partition is made of on disk: its segment
// files, as a read view holds them, streamed to a follower and written
// there into a staging directory, byte for byte.

// SegmentCopy is one segment file as a view holds it: its base offset
// and the bytes of it the view can read.
type SegmentCopy struct {
	Base, Size int64
	file       *os.File
}

// Segments lists the view's segment files, oldest first.
func (v *ReadView) Segments() []SegmentCopy {
	out := make([]SegmentCopy, 0, v.segmentCount())
	for i := range v.segmentCount() {
		s := v.segment(i)
		out = append(out, SegmentCopy{Base: s.base, Size: s.size, file: s.log})
	}
	return out
}

// Position is the log position the view ends at, as a LogPosition that
// opens a copy of its segments.
func (v *ReadView) Position() LogPosition {
	return LogPosition{NextOffset: v.active.next, SegmentBase: v.active.base, SegmentSize: v.active.size, LogStartOffset: v.LogStartOffset()}
}

// WriteSegments streams segs: for each, its base and size, then its bytes;
// a base of -1 ends the stream.
func WriteSegments(w io.Writer, segs []SegmentCopy) error {
	var hdr [16]byte
	for _, s := range segs {
		binary.BigEndian.PutUint64(hdr[:], uint64(s.Base))
		binary.BigEndian.PutUint64(hdr[8:], uint64(s.Size))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := io.Copy(w, io.NewSectionReader(s.file, 0, s.Size)); err != nil {
			return fmt.Errorf("segment %020d: %w", s.Base, err)
		}
	}
	binary.BigEndian.PutUint64(hdr[:], ^uint64(0))
	_, err := w.Write(hdr[:8])
	return err
}

// ReceiveSegments writes a WriteSegments stream into dir (created afresh)
// as segment files, fsyncs them and the directory, and returns the bases
// and sizes it wrote. Index files are not sent: opening the log rebuilds
// them.
func ReceiveSegments(dir string, r io.Reader) ([]SegmentCopy, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var got []SegmentCopy
	var hdr [16]byte
	for {
		if _, err := io.ReadFull(r, hdr[:8]); err != nil {
			return nil, fmt.Errorf("snapshot stream: %w", err)
		}
		base := int64(binary.BigEndian.Uint64(hdr[:]))
		if base == -1 {
			break
		}
		if _, err := io.ReadFull(r, hdr[8:]); err != nil {
			return nil, fmt.Errorf("snapshot stream: %w", err)
		}
		size := int64(binary.BigEndian.Uint64(hdr[8:]))
		if base < 0 || size < 0 {
			return nil, fmt.Errorf("snapshot stream: segment %d of %d bytes", base, size)
		}
		if err := receiveFile(segmentPath(dir, base, ".log"), size, r); err != nil {
			return nil, err
		}
		got = append(got, SegmentCopy{Base: base, Size: size})
	}
	if err := syncPath(dir); err != nil {
		return nil, err
	}
	return got, syncPath(filepath.Dir(dir))
}

func receiveFile(path string, size int64, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, r, size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot segment %s: %w", path, err)
	}
	return nil
}

// SwapDir puts staged in dir's place (dir's old contents go), durably: a
// crash in between leaves staged or dir, never neither, and the caller's
// marker (see raftactor's partition restore) finishes the swap at open.
func SwapDir(dir, staged string) error {
	old := dir + ".old"
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(staged, dir); err != nil {
		return err
	}
	if err := syncPath(filepath.Dir(dir)); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// ApplySnapshot resets the log to a snapshot at index (term, voters), in
// b: every entry goes, the log continues after index, and the HardState's
// commit is at least index.
func (s *LogStore) ApplySnapshot(b *pebble.Batch, index, term uint64, voters []uint64) {
	_ = b.DeleteRange(s.entryKey(0), prefixEnd(s.key("entry/")), nil)
	s.ents, s.bytes = nil, 0
	s.trunc = truncated{Index: index, Term: term, Voters: voters}
	s.putTruncated(b)
	hs := &pb.HardState{Term: u64(max(s.hs.GetTerm(), term)), Vote: u64(s.hs.GetVote()), Commit: u64(max(s.hs.GetCommit(), index))}
	s.SetHardState(b, hs)
}
