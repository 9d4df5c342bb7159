package raftactor

import (
	"encoding/binary"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// handleReady handles at most one Ready. Every proposal that reached the
// mailbox before this message is already in the RawNode, so a Ready
// carries all of them and they share one Pebble commit.
//
// Order: apply, persist, send, Advance. Applying before persisting this
// Ready's new entries is safe: CommittedEntries are committed, hence
// already durable on a quorum (for a single voter: persisted by an earlier
// Ready). It lets the acks of the previous batch go out while this batch
// is being fsynced instead of after it.
func (r *Replica) handleReady(ctx actor.Context) {
	if r.stopped || !r.rn.HasReady() {
		return
	}
	rd := r.rn.Ready()
	if rd.SoftState != nil {
		r.setLeader(ctx, rd.SoftState.RaftState == raft.StateLeader)
	}

	// 1. apply committed entries
	if len(rd.CommittedEntries) > 0 {
		r.apply(ctx, rd.CommittedEntries)
		if r.stopped {
			return // a storage failure while applying
		}
	}

	// 2. persist entries and HardState in one batch (rule 1)
	if len(rd.Entries) > 0 || !raft.IsEmptyHardState(rd.HardState) {
		b := r.cfg.DB.NewBatch()
		if err := r.store.Append(b, rd.Entries); err != nil {
			_ = b.Close()
			r.fail(ctx, "append to raft log", err)
			return
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			r.store.SetHardState(b, rd.HardState)
			r.term.Store(int64(rd.HardState.GetTerm()))
		}
		if err := r.cfg.DB.Commit(b, rd.MustSync); err != nil {
			// No Advance: raft would take this Ready's entries as
			// stable and, with a single voter, commit them.
			r.fail(ctx, "persist raft log", err)
			return
		}
	}

	// 3. send: a single-voter group has no peers; the cluster transport
	// takes rd.Messages here.

	// 4. Advance
	r.rn.Advance(rd)
	if r.rn.HasReady() {
		r.scheduleReady(ctx)
	}
}

func (r *Replica) apply(ctx actor.Context, ents []*pb.Entry) {
	for _, e := range ents {
		if !r.applyOne(ctx, e) {
			// Failed and halted: the entries applied before this one are
			// not published (no Applied), so none of them is answered
			// as a success either; halt answered them ErrStopped.
			return
		}
		r.applied = e.GetIndex()
		if r.leader && int64(e.GetTerm()) == r.term.Load() && !r.ready.Load() {
			r.ready.Store(true)
			r.readyOnce.Do(func() { close(r.readyCh) })
		}
	}
	wantCp := r.cfg.SM.Applied()
	// Answer only after Applied published the new state: a client that
	// reads right after its acknowledgement must find its write.
	for i, a := range r.acks {
		r.reply(ctx, a.p, a.v, nil)
		r.acks[i] = appliedAck{}
	}
	r.acks = r.acks[:0]
	if wantCp && !r.cpRunning {
		r.startCheckpoint(ctx)
	}
}

// applyOne applies one committed entry. It returns false when that failed
// on storage: the replica has then halted (fail).
func (r *Replica) applyOne(ctx actor.Context, e *pb.Entry) bool {
	switch e.GetType() {
	case pb.EntryNormal:
		if len(e.Data) < 8 {
			return true // the empty entry a new leader appends
		}
		id := binary.BigEndian.Uint64(e.Data)
		v := r.cfg.SM.Apply(e.GetIndex(), e.GetTerm(), e.Data[8:])
		if f, ok := v.(Fatal); ok {
			r.fail(ctx, "apply", f.Err)
			return false
		}
		// Only an entry of the term this replica leads in can be one of
		// its proposals: entries of earlier terms (another leader's, or
		// this node's before a restart) carry ids from their own
		// counter, which may collide.
		if p, ok := r.pending[id]; ok && e.GetTerm() == r.leaderTerm {
			delete(r.pending, id)
			r.acks = append(r.acks, appliedAck{p, v})
		}
	case pb.EntryConfChange, pb.EntryConfChangeV2:
		var cc pb.ConfChangeV2
		if e.GetType() == pb.EntryConfChange {
			var v1 pb.ConfChange
			if err := protoUnmarshal(e.Data, &v1); err != nil {
				r.fail(ctx, "conf change", err)
				return false
			}
			cc = *v1.AsV2()
		} else if err := protoUnmarshal(e.Data, &cc); err != nil {
			r.fail(ctx, "conf change", err)
			return false
		}
		cs := r.rn.ApplyConfChange(&cc)
		b := r.cfg.DB.NewBatch()
		r.store.SetVoters(b, cs.Voters)
		if err := r.cfg.DB.Commit(b, false); err != nil {
			r.fail(ctx, "conf change", err)
			return false
		}
	}
	return true
}

// appliedAck is a proposal applied in the current Ready, answered once the
// whole Ready is applied and published.
type appliedAck struct {
	p *Propose
	v any
}

func (r *Replica) setLeader(ctx actor.Context, leader bool) {
	if r.leader && !leader {
		// Proposals of a deposed leader may or may not commit; their
		// proposers learn NOT_LEADER and retry, and idempotence absorbs a
		// retry of one that did commit.
		for id, p := range r.pending {
			r.reply(ctx, p, nil, ErrNotLeader)
			delete(r.pending, id)
		}
	}
	r.leader = leader
	if !leader {
		r.ready.Store(false)
		return
	}
	r.leaderTerm = r.rn.BasicStatus().GetTerm()
	held := r.waiting
	r.waiting = nil
	for _, p := range held {
		r.propose(ctx, p)
	}
}
