package raftactor

import (
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/storage"
)

// Preparer is an optional StateMachine hook for a state machine whose
// entries must be final when they are proposed: a partition's, whose
// batches carry their offsets into the segments before they commit
// (Persister). The leader decides what apply would decide (offsets,
// duplicates, sequence errors), as a Kafka leader does when it appends,
// from the applied state plus its own proposals since; apply then only
// records what the entry says, the same on every replica.
//
// The replica calls Prepare only while it is a ready leader (it has
// applied an entry of its own term, so everything committed before is
// applied and nothing else is in its log), and holds proposals until
// then.
type Preparer interface {
	// Prepare turns a command into the entry to propose, which may be the
	// command itself, or answers it at once (ok false): v is the answer.
	// The entry's first CommandHeader bytes are the replica's.
	Prepare(cmd []byte, term uint64, now time.Time) (entry []byte, v any, ok bool)
	// Unprepare undoes the last Prepare: raft did not take its entry.
	Unprepare()
	// Lead(true) starts preparing from the applied state; Lead(false)
	// drops what was prepared, when leadership changes hands: entries not
	// committed may then be cut, and the next leader decides anew.
	Lead(ready bool)
}

// Persister is an optional StateMachine hook for a state machine that
// keeps its entries' bulk in files of its own (a partition's segments), so
// that it is written to disk once, not once into the raft log and again at
// apply. Persist runs in the replica's persist step, before the raft log
// records the entries: it writes the bulk of those it keeps, durably
// (fsync), after cutting away what it wrote for entries a conflicting
// append replaces (raft: writing index i deletes the entries from i on);
// ext[i] says where the bulk of ents[i] went, a zero External keeping
// ents[i] whole in the raft log. LoadExternal reads a bulk back when the
// raft log is opened.
type Persister interface {
	Persist(ents []*pb.Entry) (ext []storage.External, err error)
	LoadExternal(index uint64, ext storage.External) ([]byte, error)
}
