package raftactor

import (
	"errors"

	"github.com/asynkron/protoactor-go/actor"
)

// CommandHeader is the room every command leaves at its start for the
// replica's proposal id, so proposing does not copy the command.
const CommandHeader = 8

// NewCommand allocates a command with n payload bytes after the header.
func NewCommand(n int) []byte { return make([]byte, CommandHeader+n) }

// Then is what the proposer does with a proposal's outcome, run by
// whoever receives the Result (on its own goroutine): v is what Apply
// returned, err is set when the command was never applied.
type Then func(v any, err error)

// Propose asks a replica to replicate Data (a state-machine command built
// with NewCommand, owned by the replica from now on) and
// answer ReplyTo with a *Result carrying Token and Then once it is
// applied. A reply by message rather than a future keeps the hot path at
// one-way sends.
type Propose struct {
	Data    []byte
	ReplyTo *actor.PID
	Token   any  // opaque to the replica: a proposer's correlation value
	Then    Then // optional continuation, handed back in the Result
}

// Result answers a Propose: Value is what the state machine's Apply
// returned, or Err is set when the command was not applied here. With
// ErrStopped the outcome is unknown: a command already in the raft log may
// still be applied when the replica restarts.
type Result struct {
	Token any
	Then  Then
	Value any
	Err   error
}

// Run calls the proposal's continuation, if it has one.
func (r *Result) Run() {
	if r.Then != nil {
		r.Then(r.Value, r.Err)
	}
}

// Inspect runs Fn on the replica's goroutine, between applies: a reader
// of state only the actor may touch (Partition.Producers) sends it, and
// Fn hands the answer back on its own (a future, a channel).
type Inspect struct{ Fn func() }

// Tick is the node ticker's heartbeat to every replica.
type Tick struct{}

// Delete stops the replica and removes its raft log and data.
type Delete struct{}

// ErrNotLeader answers a proposal made to a replica that does not lead.
var ErrNotLeader = errors.New("raftactor: not the leader")

// ErrStopped answers proposals pending when the replica stops, or
// halts on a storage failure, and every proposal made to it after that.
var ErrStopped = errors.New("raftactor: replica stopped")

// readyNow asks the replica to handle one Ready. It is queued behind the
// proposals already in the mailbox, so they all land in the same Ready.
type readyNow struct{}

// releaseNow asks the replica to propose what it held until it was a
// ready leader.
type releaseNow struct{}

type checkpointDone struct {
	cp  Checkpoint
	err error
}

// IsInternal reports whether m is one of the messages a replica sends
// itself (to schedule a Ready, or report a finished checkpoint). Test
// interceptors let them through: losing one would wedge the replica,
// which nothing outside the node can cause.
func IsInternal(m any) bool {
	switch m.(type) {
	case readyNow, *checkpointDone:
		return true
	}
	return false
}
