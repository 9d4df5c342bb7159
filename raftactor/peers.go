package raftactor

import (
	"errors"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// What a replica does with the other voters of its group: messages in,
// leadership handed over, followers' progress for the in-sync set, and the
// floor below which the log is kept for them.

// Step carries raft messages from peers to the replica; the transport
// sends one per group per frame, so a frame costs one Ready per group.
type Step struct{ Msgs []*pb.Message }

// Unreachable tells the replica that a message to To was dropped.
type Unreachable struct{ To uint64 }

// TransferLeadership asks a leading replica to hand its leadership to the
// most caught-up follower (etcd-raft TransferLeader); ReplyTo gets a
// *TransferStarted naming the transferee, 0 when it does not lead or has
// no follower to hand over to.
type TransferLeadership struct{ ReplyTo *actor.PID }

// TransferStarted answers TransferLeadership.
type TransferStarted struct {
	Group uint64
	To    uint64
}

// Status is the group as its leader sees it, published at every tick.
type Status struct {
	Leader, Term, Commit, LastIndex uint64
	Voters                          []VoterStatus
}

// VoterStatus is one member's progress, as its leader sees it.
type VoterStatus struct {
	ID     uint64
	Match  uint64
	InSync bool
}

// inSyncWindow is how long a follower may go without matching the end of
// the leader's log and still count as in sync (Kafka's
// replica.lag.time.max.ms is 30 s; a shorter window shows a dead node
// sooner).
const inSyncWindow = 10 * time.Second

// maxInboundSteps bounds the Step messages queued for one replica; beyond
// it the transport drops (raft retransmits), so a backlogged replica costs
// memory in proportion to its bound, not to its peers' send rate.
const maxInboundSteps = 256

// defaultRetainBytes bounds the raft log a leader keeps for a lagging
// follower; past it the log is trimmed to the checkpoint anyway and that
// follower is sent a snapshot.
const defaultRetainBytes = 64 << 20

var errSnapshotUnsupported = errors.New("raftactor: this state machine cannot install a raft snapshot")

// AcceptStep reserves room for one Step in the replica's mailbox, or
// reports that it is full and the messages should be dropped. Safe from
// any goroutine; the replica frees the room when it handles the Step.
func (r *Replica) AcceptStep() bool {
	if r.inbound.Add(1) > maxInboundSteps {
		r.inbound.Add(-1)
		return false
	}
	return true
}

func (r *Replica) step(ctx actor.Context, m *Step) {
	r.inbound.Add(-1)
	if r.stopped {
		return
	}
	for _, msg := range m.Msgs {
		// ErrStepPeerNotFound (a message from a node that is not a voter)
		// and ErrStepLocalMsg are a peer's mistake, not ours: drop.
		_ = r.rn.Step(msg)
	}
	if r.rn.HasReady() {
		r.scheduleReady(ctx)
	}
}

func (r *Replica) transfer(ctx actor.Context, m *TransferLeadership) {
	var to uint64
	if r.leader && !r.stopped {
		st := r.rn.Status()
		best := uint64(0)
		for id, pr := range st.Progress {
			if id == st.ID || !pr.RecentActive {
				continue
			}
			if pr.Match > best || (pr.Match == best && id < to) {
				best, to = pr.Match, id
			}
		}
		if to != 0 {
			// Raft first brings the transferee up to date, then sends it
			// MsgTimeoutNow; proposals are dropped meanwhile (thesis §3.10).
			r.rn.TransferLeader(to)
			r.scheduleReady(ctx)
		}
	}
	if m.ReplyTo != nil {
		ctx.Send(m.ReplyTo, &TransferStarted{Group: r.cfg.Group, To: to})
	}
}

// trackProgress notes, at each tick of a leader, which voters have caught
// up, and publishes the group's Status.
func (r *Replica) trackProgress() {
	now := time.Now()
	if r.caughtUp == nil {
		r.caughtUp = map[uint64]time.Time{}
	}
	last, _ := r.store.LastIndex()
	hs := r.rn.BasicStatus()
	st := &Status{Leader: hs.Lead, Term: hs.GetTerm(), Commit: hs.GetCommit(), LastIndex: last}
	r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == hs.ID || pr.Match >= r.lastSeen {
			r.caughtUp[id] = now
		}
		since, ok := r.caughtUp[id]
		st.Voters = append(st.Voters, VoterStatus{ID: id, Match: pr.Match, InSync: ok && now.Sub(since) < inSyncWindow})
	})
	slices.SortFunc(st.Voters, func(a, b VoterStatus) int { return int(a.ID) - int(b.ID) })
	r.lastSeen = last
	r.status.Store(st)
}

// GroupStatus is the group's status as last published by this replica
// while it leads, or nil (a follower, or a leader before its first tick).
// Safe from any goroutine.
func (r *Replica) GroupStatus() *Status {
	// Not r.leader: that is the actor's, and this runs on any goroutine.
	// The actor clears status when it stops leading.
	return r.status.Load()
}

// InSync lists the voters counted in sync: every voter for a group of one,
// else the leader's last view (nil on a follower).
func (r *Replica) InSync() []uint64 {
	if len(r.cfg.Voters) <= 1 {
		return r.cfg.Voters
	}
	st := r.GroupStatus()
	if st == nil {
		return nil
	}
	var out []uint64
	for _, v := range st.Voters {
		if v.InSync {
			out = append(out, v.ID)
		}
	}
	return out
}

// trimIndex is how far a checkpoint at cp may trim the raft log. A leader
// keeps what its followers have not matched yet, within retainBytes, so a
// follower that was briefly away catches up from the log; a follower trims
// to its checkpoint.
func (r *Replica) trimIndex(cp uint64) uint64 {
	if !r.leader || len(r.cfg.Voters) <= 1 {
		return cp
	}
	floor := cp
	r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		floor = min(floor, pr.Match)
	})
	if floor < cp && r.store.Bytes() > r.cfg.RetainLogBytes {
		r.log.Info("raft log over its budget: trimming past a lagging follower, which will need a snapshot", "group", r.cfg.Group, "floor", floor, "checkpoint", cp)
		return cp
	}
	return floor
}

// publishLeader tells the node's leader table what this replica knows.
func (r *Replica) publishLeader() {
	if r.cfg.OnLeader != nil {
		r.cfg.OnLeader(LeaderInfo{Group: r.cfg.Group, Leader: r.lead.Load(), Term: uint64(r.term.Load()), Ready: r.ready.Load()})
	}
}
