package raftactor

import (
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Quiescence, after CockroachDB's: a group with nothing to do stops
// ticking, so that idle partitions cost nothing (1,000 partitions at RF 3
// ticked every 100 ms with a heartbeat each cost a quarter of a core per
// node). A leader whose followers have everything and have heard the
// commit index tells them so (Quiesce) and stops ticking; a follower that
// agrees stops too. Any raft message, a proposal, or a change in a peer's
// connection wakes the group: a follower whose leader's node went away
// wakes and campaigns after the election timeout as usual. A quiesced
// follower's election clock stands still, so with CheckQuorum it keeps
// refusing (pre)votes as though it had just heard from its leader, which
// is what keeps a woken laggard from disrupting a quiet group.

// quiesceAfter is how many ticks a leader waits, idle, before quiescing:
// enough heartbeats for every follower to have learned the commit index.
const quiesceAfter = 3

// Quiescer is a Transport that carries quiesce notices.
type Quiescer interface {
	// Quiesce tells to that group's leader in term has stopped ticking
	// with everything up to commit committed.
	Quiesce(group, to, term, commit uint64)
}

// Quiesce is a leader's notice to a follower (see Quiescer).
type Quiesce struct {
	From, Term, Commit uint64
}

// PeerChanged tells the replica a peer's node connected (Up) or went away.
type PeerChanged struct {
	ID uint64
	Up bool
}

// Quiesced reports whether the replica has stopped ticking; the node's
// ticker then ticks it only now and then, for its housekeeping. Safe from
// any goroutine.
func (r *Replica) Quiesced() bool { return r.quietFlag.Load() }

func (r *Replica) setQuiet(q bool) {
	r.quiet = q
	r.quietFlag.Store(q)
	r.idleTicks = 0
}

// wake resumes ticking.
func (r *Replica) wake() {
	if r.quiet {
		r.setQuiet(false)
	}
}

// maybeQuiesce runs at each tick before raft's own, and reports whether
// the replica quiesced: a quiescing tick does not tick raft, so no
// heartbeat follows the notice and wakes the followers again.
func (r *Replica) maybeQuiesce() bool {
	if !r.leader || !r.ready.Load() || len(r.pending) > 0 || len(r.waiting) > 0 {
		r.idleTicks = 0
		return false
	}
	st := r.rn.BasicStatus()
	last, _ := r.store.LastIndex()
	if st.GetCommit() != last || r.applied != last || st.LeadTransferee != 0 {
		r.idleTicks = 0
		return false
	}
	caughtUp := true
	r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == r.cfg.NodeID {
			return
		}
		// A follower whose node is down does not hold the group awake:
		// it wakes the group when it connects again (PeerChanged).
		if pr.Match != last && (r.cfg.PeerUp == nil || r.cfg.PeerUp(id)) {
			caughtUp = false
		}
	})
	if !caughtUp {
		r.idleTicks = 0
		return false
	}
	if r.idleTicks++; r.idleTicks < quiesceAfter && len(r.cfg.Voters) > 1 {
		return false
	}
	if q, ok := r.cfg.Transport.(Quiescer); ok {
		for _, id := range r.cfg.Voters {
			if id != r.cfg.NodeID {
				q.Quiesce(r.cfg.Group, id, st.GetTerm(), st.GetCommit())
			}
		}
	}
	// The status a quiet group keeps showing (/v1/cluster, the in-sync
	// set) is its last one: publish it as it stands.
	r.trackProgress()
	r.setQuiet(true)
	return true
}

// wakes reports whether msgs should wake a quiesced replica: anything
// but the heartbeats of the current term that were in flight when its
// group quiesced (and that keep a follower's election clock reset).
func (r *Replica) wakes(msgs []*pb.Message) bool {
	if !r.quiet {
		return false
	}
	term := uint64(r.term.Load())
	for _, m := range msgs {
		if t := m.GetType(); (t != pb.MsgHeartbeat && t != pb.MsgHeartbeatResp) || m.GetTerm() != term {
			return true
		}
	}
	return false
}

// quiesce handles a leader's notice: a follower that knows everything the
// leader committed, in the same term under the same leader, stops too.
func (r *Replica) quiesce(m *Quiesce) {
	st := r.rn.BasicStatus()
	if r.leader || st.GetTerm() != m.Term || st.Lead != m.From || st.GetCommit() < m.Commit || r.applied < m.Commit {
		return
	}
	r.setQuiet(true)
}

// peerChanged wakes a leader when a follower's node connects (so it hears
// heartbeats before its election timeout) and a follower whose leader's
// node went away (so it can campaign).
func (r *Replica) peerChanged(m *PeerChanged) {
	if !r.quiet {
		return
	}
	if (m.Up && r.leader) || (!m.Up && !r.leader && r.lead.Load() == m.ID) {
		r.wake()
	}
}
