package storage

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// LogStore is one raft group's log in the node's Pebble DB, implementing
// raft.Storage. Keys: raft/<group>/hardstate, raft/<group>/truncated and
// raft/<group>/entry/<index BE>. The entries not yet trimmed are also kept
// in memory: the log is trimmed soon after apply, so the tail is small, and
// raft reads it on every Ready.
//
// Only the owning replica actor calls it; raft's own reads happen inside
// that actor's RawNode calls, so no lock is needed.
type LogStore struct {
	db    *DB
	group uint64
	hs    *pb.HardState
	trunc truncated
	ents  []*pb.Entry // ents[i].Index == trunc.Index+1+i
	bytes int         // data bytes in ents
}

// Bytes is the size of the entries' data kept in the log.
func (s *LogStore) Bytes() int { return s.bytes }

func dataBytes(ents []*pb.Entry) int {
	n := 0
	for _, e := range ents {
		n += len(e.Data)
	}
	return n
}

var _ raft.Storage = (*LogStore)(nil)

// truncated is the last trimmed entry, kept so Term(FirstIndex()-1) works,
// and the configuration in force there.
type truncated struct {
	Index  uint64   `json:"index"`
	Term   uint64   `json:"term"`
	Voters []uint64 `json:"voters"`
}

func (s *LogStore) key(kind string) []byte {
	return append(GroupPrefix(s.group), "/"+kind...)
}

func (s *LogStore) entryKey(i uint64) []byte {
	return binary.BigEndian.AppendUint64(s.key("entry/"), i)
}

// OpenLogStore loads group's log. A group with nothing stored is bootstrapped
// with voters: its log starts after index 1, term 1, as raft recommends
// instead of RawNode.Bootstrap.
func OpenLogStore(db *DB, group uint64, voters []uint64) (*LogStore, error) {
	return OpenLogStoreWith(db, group, voters, LogStoreOptions{})
}

// LogStoreOptions are for a log whose entries may keep their bulk outside
// it (External).
type LogStoreOptions struct {
	// Load reads an external entry's bulk back at open.
	Load func(index uint64, ext External) ([]byte, error)
	// Applied is the state machine's durable applied index: with Load set,
	// the entries up to it are trimmed at open rather than read back (the
	// state machine holds them; a follower that still needs them gets a
	// snapshot).
	Applied uint64
}

// OpenLogStoreWith is OpenLogStore for a log with external entries.
func OpenLogStoreWith(db *DB, group uint64, voters []uint64, o LogStoreOptions) (*LogStore, error) {
	s := &LogStore{db: db, group: group}
	v, err := db.Get(s.key("truncated"))
	switch {
	case errors.Is(err, ErrNotFound):
		s.trunc = truncated{Index: 1, Term: 1, Voters: voters}
		s.hs = &pb.HardState{Term: u64(1), Commit: u64(1)}
		b := db.NewBatch()
		s.putTruncated(b)
		s.SetHardState(b, s.hs)
		// Not synced: the bootstrap state is a function of the group and
		// its first voters alone, so one lost to a crash is written again,
		// the same, at the next open; and Pebble's WAL makes it durable
		// with the group's first synced write (its first vote or entry),
		// which is ordered after it. A topic of 10,000 partitions then
		// costs no 10,000 fsyncs on the controller's goroutine.
		if err := db.Commit(b, false); err != nil {
			return nil, fmt.Errorf("raft group %d: bootstrap: %w", group, err)
		}
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("raft group %d: %w", group, err)
	}
	if err := json.Unmarshal(v, &s.trunc); err != nil {
		return nil, fmt.Errorf("raft group %d: truncated record: %w", group, err)
	}
	s.hs = &pb.HardState{}
	if v, err := db.Get(s.key("hardstate")); err == nil {
		if len(v) != 24 {
			return nil, fmt.Errorf("raft group %d: hardstate of %d bytes", group, len(v))
		}
		s.hs.Term = u64(binary.BigEndian.Uint64(v))
		s.hs.Vote = u64(binary.BigEndian.Uint64(v[8:]))
		s.hs.Commit = u64(binary.BigEndian.Uint64(v[16:]))
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("raft group %d: %w", group, err)
	}
	lo, hi := s.entryKey(s.trunc.Index+1), prefixEnd(s.key("entry/"))
	err = db.Scan(lo, hi, func(k, v []byte) error {
		i := binary.BigEndian.Uint64(k[len(k)-8:])
		if want := s.trunc.Index + 1 + uint64(len(s.ents)); i != want {
			return fmt.Errorf("entry %d where %d was expected", i, want)
		}
		e, ext, err := decodeEntry(i, v)
		if err != nil {
			return err
		}
		if ext.Len > 0 {
			if o.Load == nil {
				return fmt.Errorf("entry %d keeps its data outside the raft log, and nothing loads it", i)
			}
			if i > o.Applied {
				bulk, err := o.Load(i, ext)
				if err != nil {
					return fmt.Errorf("entry %d: %w", i, err)
				}
				e.Data = append(e.Data, bulk...)
			}
		}
		s.ents = append(s.ents, e)
		s.bytes += len(e.Data)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("raft group %d: %w", group, err)
	}
	if o.Load != nil && o.Applied > s.trunc.Index {
		// Entries up to Applied were not read back: trim them.
		b := db.NewBatch()
		if err := s.Compact(b, min(o.Applied, s.lastIndex())); err != nil {
			_ = b.Close()
			return nil, err
		}
		if err := db.Commit(b, false); err != nil {
			return nil, fmt.Errorf("raft group %d: %w", group, err)
		}
	}
	return s, nil
}

// External says where the bulk of an entry's data lies outside the raft
// log (a partition's segment, written when the entry was persisted): the
// data's first Prefix bytes are kept in the log, the Len bytes after them
// are at byte Pos of the segment whose base offset is SegmentBase.
type External struct {
	Prefix      int
	SegmentBase int64
	Pos         int64
	Len         int
}

// externalFlag marks, in an entry record's type byte, an entry whose bulk
// is external; raft's entry types are small.
const externalFlag = 0x80

// LastExternal is the external entry of group's raft log with the highest
// index, if any: where the bulk its state machine must keep at open ends.
func LastExternal(db *DB, group uint64) (External, bool, error) {
	s := &LogStore{db: db, group: group}
	var last External
	found := false
	err := db.Scan(s.entryKey(0), prefixEnd(s.key("entry/")), func(k, v []byte) error {
		_, ext, err := decodeEntry(binary.BigEndian.Uint64(k[len(k)-8:]), v)
		if err == nil && ext.Len > 0 {
			last, found = ext, true
		}
		return err
	})
	return last, found, err
}

// InitialState implements raft.Storage.
func (s *LogStore) InitialState() (*pb.HardState, *pb.ConfState, error) {
	return s.hs, &pb.ConfState{Voters: s.trunc.Voters}, nil
}

// Entries implements raft.Storage: a fresh slice of [lo, hi), at least one
// entry, at most maxSize bytes of data otherwise.
func (s *LogStore) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	if lo <= s.trunc.Index {
		return nil, raft.ErrCompacted
	}
	if hi > s.lastIndex()+1 {
		return nil, raft.ErrUnavailable
	}
	src := s.ents[lo-s.trunc.Index-1 : hi-s.trunc.Index-1]
	var size uint64
	n := 0
	for n < len(src) {
		size += uint64(len(src[n].Data)) + 16
		if n > 0 && size > maxSize {
			break
		}
		n++
	}
	return append([]*pb.Entry(nil), src[:n]...), nil
}

// Term implements raft.Storage.
func (s *LogStore) Term(i uint64) (uint64, error) {
	switch {
	case i == s.trunc.Index:
		return s.trunc.Term, nil
	case i < s.trunc.Index:
		return 0, raft.ErrCompacted
	case i > s.lastIndex():
		return 0, raft.ErrUnavailable
	}
	return s.ents[i-s.trunc.Index-1].GetTerm(), nil
}

// LastIndex implements raft.Storage.
func (s *LogStore) LastIndex() (uint64, error) { return s.lastIndex(), nil }

func (s *LogStore) lastIndex() uint64 { return s.trunc.Index + uint64(len(s.ents)) }

// FirstIndex implements raft.Storage.
func (s *LogStore) FirstIndex() (uint64, error) { return s.trunc.Index + 1, nil }

// Snapshot implements raft.Storage. The snapshot carries only metadata
// until followers are caught up from segments (the cluster issue).
func (s *LogStore) Snapshot() (*pb.Snapshot, error) {
	return &pb.Snapshot{Metadata: &pb.SnapshotMetadata{
		Index:     u64(s.trunc.Index),
		Term:      u64(s.trunc.Term),
		ConfState: &pb.ConfState{Voters: s.trunc.Voters},
	}}, nil
}

// Append writes ents into b, replacing any stored entries at or after the
// first one's index (raft rule: writing index i deletes entries >= i). ext,
// when not nil, says for each entry whether its bulk is external: then
// only its prefix and where the rest lies go into the log, and the caller
// has made that rest durable first.
func (s *LogStore) Append(b *pebble.Batch, ents []*pb.Entry, ext []External) error {
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].GetIndex()
	if first <= s.trunc.Index || first > s.lastIndex()+1 {
		return fmt.Errorf("raft group %d: append at %d outside (%d, %d]", s.group, first, s.trunc.Index, s.lastIndex()+1)
	}
	if first <= s.lastIndex() {
		_ = b.DeleteRange(s.entryKey(first), prefixEnd(s.key("entry/")), nil)
		s.bytes -= dataBytes(s.ents[first-s.trunc.Index-1:])
		s.ents = s.ents[:first-s.trunc.Index-1]
	}
	for i, e := range ents {
		k := s.entryKey(e.GetIndex())
		var x External
		if ext != nil {
			x = ext[i]
		}
		if x.Len == 0 {
			op := b.SetDeferred(len(k), 9+len(e.Data))
			copy(op.Key, k)
			binary.BigEndian.PutUint64(op.Value, e.GetTerm())
			op.Value[8] = byte(e.GetType())
			copy(op.Value[9:], e.Data)
			op.Finish()
			continue
		}
		if x.Prefix+x.Len != len(e.Data) {
			return fmt.Errorf("raft group %d: entry %d of %d bytes, external %d+%d", s.group, e.GetIndex(), len(e.Data), x.Prefix, x.Len)
		}
		op := b.SetDeferred(len(k), 9+externalRefLen+x.Prefix)
		copy(op.Key, k)
		binary.BigEndian.PutUint64(op.Value, e.GetTerm())
		op.Value[8] = byte(e.GetType()) | externalFlag
		binary.BigEndian.PutUint64(op.Value[9:], uint64(x.SegmentBase))
		binary.BigEndian.PutUint64(op.Value[17:], uint64(x.Pos))
		binary.BigEndian.PutUint32(op.Value[25:], uint32(x.Len))
		copy(op.Value[9+externalRefLen:], e.Data[:x.Prefix])
		op.Finish()
	}
	s.ents = append(s.ents, ents...)
	s.bytes += dataBytes(ents)
	return nil
}

// SetHardState writes hs into b.
func (s *LogStore) SetHardState(b *pebble.Batch, hs *pb.HardState) {
	v := make([]byte, 24)
	binary.BigEndian.PutUint64(v, hs.GetTerm())
	binary.BigEndian.PutUint64(v[8:], hs.GetVote())
	binary.BigEndian.PutUint64(v[16:], hs.GetCommit())
	_ = b.Set(s.key("hardstate"), v, nil)
	s.hs = &pb.HardState{Term: u64(hs.GetTerm()), Vote: u64(hs.GetVote()), Commit: u64(hs.GetCommit())}
}

// Compact trims the log up to and including index, in b. The caller has
// made everything the entries carried durable elsewhere (segments).
func (s *LogStore) Compact(b *pebble.Batch, index uint64) error {
	if index <= s.trunc.Index {
		return nil
	}
	if index > s.lastIndex() {
		return fmt.Errorf("raft group %d: compact %d beyond last index %d", s.group, index, s.lastIndex())
	}
	term := s.ents[index-s.trunc.Index-1].GetTerm()
	_ = b.DeleteRange(s.entryKey(0), s.entryKey(index+1), nil)
	s.bytes -= dataBytes(s.ents[:index-s.trunc.Index])
	s.ents = append([]*pb.Entry(nil), s.ents[index-s.trunc.Index:]...)
	s.trunc.Index, s.trunc.Term = index, term
	s.putTruncated(b)
	return nil
}

// SetVoters records the configuration in force (after a ConfChange).
func (s *LogStore) SetVoters(b *pebble.Batch, voters []uint64) {
	s.trunc.Voters = voters
	s.putTruncated(b)
}

func (s *LogStore) putTruncated(b *pebble.Batch) {
	v, _ := json.Marshal(s.trunc)
	_ = b.Set(s.key("truncated"), v, nil)
}

// externalRefLen is the size of an external entry's reference: segment
// base, position and length.
const externalRefLen = 20

// decodeEntry decodes a stored entry; for an external one, Data holds only
// the prefix and ext says where the rest is.
func decodeEntry(index uint64, v []byte) (e *pb.Entry, ext External, err error) {
	if len(v) < 9 {
		return nil, ext, fmt.Errorf("entry %d: %d bytes", index, len(v))
	}
	t := pb.EntryType(v[8] &^ externalFlag)
	data := v[9:]
	if v[8]&externalFlag != 0 {
		if len(data) < externalRefLen {
			return nil, ext, fmt.Errorf("entry %d: external reference of %d bytes", index, len(data))
		}
		ext = External{
			SegmentBase: int64(binary.BigEndian.Uint64(data)),
			Pos:         int64(binary.BigEndian.Uint64(data[8:])),
			Len:         int(binary.BigEndian.Uint32(data[16:])),
		}
		data = data[externalRefLen:]
		ext.Prefix = len(data)
	}
	return &pb.Entry{
		Index: u64(index),
		Term:  u64(binary.BigEndian.Uint64(v)),
		Type:  &t,
		Data:  append(make([]byte, 0, len(data)+ext.Len), data...),
	}, ext, nil
}

func u64(v uint64) *uint64 { return &v }
