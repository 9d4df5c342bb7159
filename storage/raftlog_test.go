package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// These tests hold LogStore to the raft.Storage contract as written in
// go.etcd.io/raft/v3's storage.go, and to the raft rules in ARCHITECTURE.md.

func openTestDB(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := OpenDB(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// reopenDB closes db and opens the same directory again, so that what a
// test reads afterwards comes from disk, not from memory.
func reopenDB(t *testing.T, db *DB, dir string) *DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return openTestDB(t, dir)
}

func openStore(t *testing.T, db *DB, group uint64, voters []uint64) *LogStore {
	t.Helper()
	s, err := OpenLogStore(db, group, voters)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ent(index, term uint64, data string) *pb.Entry {
	return &pb.Entry{Index: u64(index), Term: u64(term), Type: pb.EntryNormal.Enum(), Data: []byte(data)}
}

// ents builds entries lo..hi (inclusive) of term, each carrying its index
// and a tag in its data.
func ents(lo, hi, term uint64, tag string) []*pb.Entry {
	var out []*pb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, ent(i, term, fmt.Sprintf("%s-%d", tag, i)))
	}
	return out
}

func appendCommit(t *testing.T, db *DB, s *LogStore, es []*pb.Entry) {
	t.Helper()
	b := db.NewBatch()
	if err := s.Append(b, es, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
}

func firstLast(t *testing.T, s *LogStore) (uint64, uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return f, l
}

func mustTerm(t *testing.T, s *LogStore, i uint64) uint64 {
	t.Helper()
	term, err := s.Term(i)
	if err != nil {
		t.Fatalf("Term(%d): %v", i, err)
	}
	return term
}

// checkEntries asserts Entries(lo, hi, no limit) returns want, by index,
// term, type and data.
func checkEntries(t *testing.T, s *LogStore, lo, hi uint64, want []*pb.Entry) {
	t.Helper()
	got, err := s.Entries(lo, hi, math.MaxUint64)
	if err != nil {
		t.Fatalf("Entries(%d, %d): %v", lo, hi, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Entries(%d, %d): %d entries, want %d", lo, hi, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.GetIndex() != w.GetIndex() || g.GetTerm() != w.GetTerm() || g.GetType() != w.GetType() || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("entry %d: got {%d %d %v %q}, want {%d %d %v %q}", i,
				g.GetIndex(), g.GetTerm(), g.GetType(), g.Data, w.GetIndex(), w.GetTerm(), w.GetType(), w.Data)
		}
	}
}

func TestLogStoreBootstrap(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	defer func() { db.Close() }()
	s := openStore(t, db, 7, []uint64{1, 2, 3})

	check := func(s *LogStore) {
		t.Helper()
		hs, cs, err := s.InitialState()
		if err != nil {
			t.Fatal(err)
		}
		if hs.GetTerm() != 1 || hs.GetCommit() != 1 || hs.GetVote() != 0 {
			t.Fatalf("hard state %v, want term 1 commit 1", hs)
		}
		if !slices.Equal(cs.Voters, []uint64{1, 2, 3}) {
			t.Fatalf("voters %v, want [1 2 3]", cs.Voters)
		}
		if f, l := firstLast(t, s); f != 2 || l != 1 {
			t.Fatalf("first %d last %d, want 2 1", f, l)
		}
		if term := mustTerm(t, s, 1); term != 1 {
			t.Fatalf("Term(1) = %d, want 1", term)
		}
		if _, err := s.Term(0); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Term(0): %v, want ErrCompacted", err)
		}
		if _, err := s.Term(2); !errors.Is(err, raft.ErrUnavailable) {
			t.Fatalf("Term(2): %v, want ErrUnavailable", err)
		}
		if _, err := s.Entries(1, 2, math.MaxUint64); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Entries(1, 2): %v, want ErrCompacted", err)
		}
		if _, err := s.Entries(2, 3, math.MaxUint64); !errors.Is(err, raft.ErrUnavailable) {
			t.Fatalf("Entries(2, 3): %v, want ErrUnavailable", err)
		}
		snap, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if md := snap.GetMetadata(); md.GetIndex() != 1 || md.GetTerm() != 1 || !slices.Equal(md.GetConfState().Voters, []uint64{1, 2, 3}) {
			t.Fatalf("snapshot metadata %v", md)
		}
	}
	check(s)

	// Reopening finds the stored group: the voters passed now are those of
	// a group that does not exist yet, so they are ignored.
	db = reopenDB(t, db, dir)
	check(openStore(t, db, 7, []uint64{9}))

	// The bootstrap state is what a RawNode starts from: it can elect
	// itself and append after index 1.
	s = openStore(t, db, 8, []uint64{1})
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10 && rn.HasReady(); i++ {
		rd := rn.Ready()
		b := db.NewBatch()
		if err := s.Append(b, rd.Entries, nil); err != nil {
			t.Fatal(err)
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			s.SetHardState(b, rd.HardState)
		}
		if err := db.Commit(b, rd.MustSync); err != nil {
			t.Fatal(err)
		}
		rn.Advance(rd)
	}
	if st := rn.BasicStatus(); st.RaftState != raft.StateLeader || st.GetTerm() != 2 {
		t.Fatalf("raft state %v term %d, want leader of term 2", st.RaftState, st.GetTerm())
	}
	if _, l := firstLast(t, s); l != 2 || mustTerm(t, s, 2) != 2 {
		t.Fatalf("last index %d, want the leader's empty entry at 2 of term 2", l)
	}
}

func TestLogStoreAppendEntries(t *testing.T) {
	db := openTestDB(t, t.TempDir())
	defer db.Close()
	s := openStore(t, db, 1, []uint64{1})

	var es []*pb.Entry
	for i := uint64(2); i <= 6; i++ {
		es = append(es, ent(i, 2, string(bytes.Repeat([]byte{byte('a' + i)}, 100))))
	}
	appendCommit(t, db, s, es)
	if f, l := firstLast(t, s); f != 2 || l != 6 {
		t.Fatalf("first %d last %d, want 2 6", f, l)
	}
	checkEntries(t, s, 2, 7, es)
	checkEntries(t, s, 3, 5, es[1:3])
	checkEntries(t, s, 4, 4, nil)
	for i := uint64(2); i <= 6; i++ {
		if term := mustTerm(t, s, i); term != 2 {
			t.Fatalf("Term(%d) = %d", i, term)
		}
	}
	if _, err := s.Term(7); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Term(7): %v, want ErrUnavailable", err)
	}

	// maxSize: at least one entry even when it alone is over the limit.
	for _, max := range []uint64{0, 1, 100} {
		got, err := s.Entries(2, 7, max)
		if err != nil || len(got) != 1 || got[0].GetIndex() != 2 {
			t.Fatalf("Entries(2, 7, %d) = %d entries, %v; want exactly entry 2", max, len(got), err)
		}
	}
	// Two 100-byte entries fit in 250 bytes, three do not.
	if got, err := s.Entries(2, 7, 250); err != nil || len(got) != 2 {
		t.Fatalf("Entries(2, 7, 250) = %d entries, %v; want 2", len(got), err)
	}

	// A fresh slice: what the caller does to it does not reach the store.
	got, _ := s.Entries(2, 7, math.MaxUint64)
	got[0] = nil
	got = append(got[:1], ent(99, 99, "x"))
	_ = got
	checkEntries(t, s, 2, 7, es)

	// Below the first index: ErrCompacted; beyond the last: ErrUnavailable.
	if _, err := s.Entries(1, 3, math.MaxUint64); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Entries(1, 3): %v, want ErrCompacted", err)
	}
	if _, err := s.Entries(5, 8, math.MaxUint64); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Entries(5, 8): %v, want ErrUnavailable", err)
	}

	// Appends must be contiguous and above the trimmed index.
	b := db.NewBatch()
	if err := s.Append(b, []*pb.Entry{ent(8, 2, "gap")}, nil); err == nil {
		t.Fatal("append leaving a gap at 7 succeeded")
	}
	if err := s.Append(b, []*pb.Entry{ent(1, 2, "trimmed")}, nil); err == nil {
		t.Fatal("append at the trimmed index succeeded")
	}
	if err := s.Append(b, nil, nil); err != nil {
		t.Fatalf("empty append: %v", err)
	}
	_ = b.Close()
	checkEntries(t, s, 2, 7, es)

	// Entry types survive the round trip through Pebble.
	cc := ent(7, 2, "conf")
	cc.Type = pb.EntryConfChangeV2.Enum()
	appendCommit(t, db, s, []*pb.Entry{cc})
	s2 := openStore(t, db, 1, nil)
	checkEntries(t, s2, 2, 8, append(append([]*pb.Entry(nil), es...), cc))
}

// Raft rule 2: writing index i deletes the stored entries >= i, in memory
// and in Pebble.
func TestLogStoreOverwrite(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	defer func() { db.Close() }()
	s := openStore(t, db, 3, []uint64{1})

	old := ents(2, 8, 2, "old")
	appendCommit(t, db, s, old)
	repl := ents(5, 6, 3, "new")
	appendCommit(t, db, s, repl)

	want := append(append([]*pb.Entry(nil), old[:3]...), repl...)
	check := func(s *LogStore) {
		t.Helper()
		if f, l := firstLast(t, s); f != 2 || l != 6 {
			t.Fatalf("first %d last %d, want 2 6", f, l)
		}
		checkEntries(t, s, 2, 7, want)
		if term := mustTerm(t, s, 4); term != 2 {
			t.Fatalf("Term(4) = %d, want 2", term)
		}
		if term := mustTerm(t, s, 5); term != 3 {
			t.Fatalf("Term(5) = %d, want 3", term)
		}
		if _, err := s.Term(7); !errors.Is(err, raft.ErrUnavailable) {
			t.Fatalf("Term(7): %v, want ErrUnavailable", err)
		}
	}
	check(s)
	db = reopenDB(t, db, dir)
	s = openStore(t, db, 3, nil)
	check(s)

	// Append then overwrite within one batch: the batch's later writes win
	// over its own earlier ones.
	b := db.NewBatch()
	if err := s.Append(b, ents(7, 10, 3, "tail"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(b, ents(8, 8, 4, "tail2"), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	want = append(append(want, ents(7, 7, 3, "tail")...), ents(8, 8, 4, "tail2")...)
	db = reopenDB(t, db, dir)
	s = openStore(t, db, 3, nil)
	if _, l := firstLast(t, s); l != 8 {
		t.Fatalf("last %d after overwrite in one batch, want 8", l)
	}
	checkEntries(t, s, 2, 9, want)

	// Overwriting everything from the first index.
	appendCommit(t, db, s, ents(2, 2, 5, "all"))
	db = reopenDB(t, db, dir)
	s = openStore(t, db, 3, nil)
	if f, l := firstLast(t, s); f != 2 || l != 2 {
		t.Fatalf("first %d last %d, want 2 2", f, l)
	}
	checkEntries(t, s, 2, 3, ents(2, 2, 5, "all"))
}

// Raft rule 3: after Compact, Term(FirstIndex()-1) still answers.
func TestLogStoreCompact(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	defer func() { db.Close() }()
	s := openStore(t, db, 4, []uint64{1})

	all := append(ents(2, 5, 2, "a"), ents(6, 10, 3, "b")...)
	appendCommit(t, db, s, all)

	b := db.NewBatch()
	if err := s.Compact(b, 6); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b, false); err != nil {
		t.Fatal(err)
	}
	check := func(s *LogStore) {
		t.Helper()
		if f, l := firstLast(t, s); f != 7 || l != 10 {
			t.Fatalf("first %d last %d, want 7 10", f, l)
		}
		if term := mustTerm(t, s, 6); term != 3 {
			t.Fatalf("Term(FirstIndex()-1) = %d, want 3", term)
		}
		if _, err := s.Term(5); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Term(5): %v, want ErrCompacted", err)
		}
		if _, err := s.Entries(6, 8, math.MaxUint64); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Entries(6, 8): %v, want ErrCompacted", err)
		}
		checkEntries(t, s, 7, 11, all[5:])
		snap, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if md := snap.GetMetadata(); md.GetIndex() != 6 || md.GetTerm() != 3 {
			t.Fatalf("snapshot at %d/%d, want 6/3", md.GetIndex(), md.GetTerm())
		}
	}
	check(s)

	// Compacting at or below the trimmed index is a no-op; beyond the
	// last index an error.
	b = db.NewBatch()
	if err := s.Compact(b, 4); err != nil {
		t.Fatalf("Compact(4) after Compact(6): %v", err)
	}
	if err := s.Compact(b, 11); err == nil {
		t.Fatal("Compact beyond the last index succeeded")
	}
	_ = b.Close()
	check(s)

	db = reopenDB(t, db, dir)
	s = openStore(t, db, 4, nil)
	check(s)

	// The log goes on after the trimmed part, and can be trimmed whole.
	appendCommit(t, db, s, ents(11, 11, 4, "c"))
	b = db.NewBatch()
	if err := s.Compact(b, 11); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b, false); err != nil {
		t.Fatal(err)
	}
	checkAllTrimmed := func(st *LogStore) {
		t.Helper()
		if f, l := firstLast(t, st); f != 12 || l != 11 {
			t.Fatalf("first %d last %d after trimming everything, want 12 11", f, l)
		}
		if term := mustTerm(t, st, 11); term != 4 {
			t.Fatalf("Term(11) = %d, want 4", term)
		}
		if _, err := st.Entries(12, 12, 0); err != nil {
			t.Fatalf("Entries(12, 12): %v", err)
		}
	}
	checkAllTrimmed(s)
	db = reopenDB(t, db, dir)
	s = openStore(t, db, 4, nil)
	checkAllTrimmed(s)
	// An append right after a whole-log trim.
	appendCommit(t, db, s, ents(12, 12, 4, "d"))
	db = reopenDB(t, db, dir)
	s = openStore(t, db, 4, nil)
	checkEntries(t, s, 12, 13, ents(12, 12, 4, "d"))
}

func TestLogStoreHardStateAndVoters(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	defer func() { db.Close() }()
	s := openStore(t, db, 5, []uint64{1, 2, 3})
	appendCommit(t, db, s, ents(2, 9, 5, "x"))

	hs := &pb.HardState{Term: u64(5), Vote: u64(2), Commit: u64(7)}
	b := db.NewBatch()
	s.SetHardState(b, hs)
	s.SetVoters(b, []uint64{1, 2, 4})
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	// The store keeps its own copy of the hard state.
	hs.Commit = u64(99)

	check := func(s *LogStore) {
		t.Helper()
		got, cs, err := s.InitialState()
		if err != nil {
			t.Fatal(err)
		}
		if got.GetTerm() != 5 || got.GetVote() != 2 || got.GetCommit() != 7 {
			t.Fatalf("hard state %v, want term 5 vote 2 commit 7", got)
		}
		if !slices.Equal(cs.Voters, []uint64{1, 2, 4}) {
			t.Fatalf("voters %v, want [1 2 4]", cs.Voters)
		}
	}
	check(s)
	db = reopenDB(t, db, dir)
	s = openStore(t, db, 5, nil)
	check(s)

	// Compacting rewrites the truncated record: the voters stay.
	b = db.NewBatch()
	if err := s.Compact(b, 7); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b, false); err != nil {
		t.Fatal(err)
	}
	db = reopenDB(t, db, dir)
	s = openStore(t, db, 5, nil)
	check(s)
	checkEntries(t, s, 8, 10, ents(8, 9, 5, "x"))
}

// Groups share the DB but not their keys; DeleteGroup removes one group.
func TestLogStoreGroupsAreSeparate(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	defer func() { db.Close() }()
	a := openStore(t, db, 1, []uint64{1})
	b := openStore(t, db, 256, []uint64{1}) // differs from group 1 in another byte
	appendCommit(t, db, a, ents(2, 4, 2, "a"))
	appendCommit(t, db, b, ents(2, 3, 2, "b"))
	// Overwriting in one group leaves the other alone.
	appendCommit(t, db, a, ents(2, 2, 3, "a2"))

	db = reopenDB(t, db, dir)
	a, b = openStore(t, db, 1, nil), openStore(t, db, 256, nil)
	checkEntries(t, a, 2, 3, ents(2, 2, 3, "a2"))
	checkEntries(t, b, 2, 4, ents(2, 3, 2, "b"))

	if err := db.DeleteGroup(1); err != nil {
		t.Fatal(err)
	}
	db = reopenDB(t, db, dir)
	a = openStore(t, db, 1, []uint64{7})
	if f, l := firstLast(t, a); f != 2 || l != 1 {
		t.Fatalf("deleted group reopened at first %d last %d, want a fresh log", f, l)
	}
	if _, cs, _ := a.InitialState(); !slices.Equal(cs.Voters, []uint64{7}) {
		t.Fatalf("deleted group's voters %v, want the new ones", cs.Voters)
	}
	checkEntries(t, openStore(t, db, 256, nil), 2, 4, ents(2, 3, 2, "b"))
}
