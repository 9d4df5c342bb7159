package raftactor

import "github.com/cockroachdb/pebble/v2"

// StateMachine is what a replica applies committed entries to: a
// partition's log or the controller's metadata. All methods run on the
// replica actor's goroutine.
type StateMachine interface {
	// Apply applies one committed command; the returned value goes to the
	// proposer when it is waiting on this node. term is the leader epoch.
	Apply(index, term uint64, data []byte) any
	// Applied runs once after a Ready's entries were applied; it returns
	// true when enough has been applied that a checkpoint is worth taking.
	Applied() bool
	// Checkpoint captures the state up to index so it can be made durable
	// outside the raft log, or returns nil when there is nothing to do.
	Checkpoint(index uint64) Checkpoint
	// Close releases files; deleted means the replica's data goes away.
	Close(deleted bool) error
}

// Checkpoint makes a state machine durable up to Index, after which the
// raft log up to Index is trimmed.
type Checkpoint interface {
	Index() uint64
	// Run does the slow part (fsync) off the actor.
	Run() error
	// Save records the checkpoint in the batch that trims the raft log.
	Save(b *pebble.Batch) error
}

// Fatal, returned by Apply, is a storage failure: the replica halts and
// calls its FailStop (by default ending the process) rather than go on
// with state it can no longer vouch for.
type Fatal struct{ Err error }

func (f Fatal) Error() string { return f.Err.Error() }
