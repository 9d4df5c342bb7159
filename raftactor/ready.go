package raftactor

import (
	"encoding/binary"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/storage"
)

// handleReady handles at most one Ready. Every proposal that reached the
// mailbox before this message is already in the RawNode, so a Ready
// carries all of them and they share one Pebble commit.
//
// Order: send what may leave before the fsync, apply what is already
// durable, persist, send the rest, apply the rest, Advance. This is
// etcd-raft's contract for synchronous storage (persist before send,
// persisted-and-committed before apply, Advance last) with two
// refinements, both taken from what etcd-raft itself does with
// AsyncStorageWrites:
//
//   - Only responses that vote (MsgAppResp, MsgVoteResp, MsgPreVoteResp)
//     depend on this Ready's entries and HardState being durable (thesis
//     §3.8: a server persists its term, vote and new entries before it
//     answers). Everything else, notably a leader's MsgApp, may be sent
//     before the leader's own fsync (thesis §10.2.1): the leader counts
//     itself towards a quorum only once Advance steps its own append
//     response, which is after the fsync. So followers write while the
//     leader writes.
//   - CommittedEntries are committed, but on a follower they can include
//     entries that arrive in this same Ready's Entries (etcd-raft 3.7 in
//     synchronous mode). Entries below the first index of rd.Entries were
//     persisted by an earlier Ready and are applied before the fsync, so
//     their acks go out while this batch is being written; the others are
//     applied after it. A single voter's committed entries are always of
//     earlier Readys.
func (r *Replica) handleReady(ctx actor.Context) {
	if r.stopped || !r.rn.HasReady() {
		return
	}
	rd := r.rn.Ready()
	if rd.SoftState != nil {
		r.setLeader(ctx, rd.SoftState.RaftState == raft.StateLeader, rd.SoftState.Lead)
	}
	if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
		// A follower given the leader's state whole: install it before
		// anything of this Ready that comes after it (its entries, its
		// committed entries).
		if err := r.installSnapshot(rd.Snapshot); err != nil {
			r.fail(ctx, "install snapshot", err)
			return
		}
	}

	// 1. send what does not wait for this Ready's persistence
	after := r.send(rd.Messages, false)

	// 2. apply committed entries persisted by earlier Readys
	durable := rd.CommittedEntries
	var rest []*pb.Entry
	if len(rd.Entries) > 0 {
		first := rd.Entries[0].GetIndex()
		for i, e := range durable {
			if e.GetIndex() >= first {
				durable, rest = durable[:i], durable[i:]
				break
			}
		}
	}
	if len(durable) > 0 {
		r.apply(ctx, durable)
		if r.stopped {
			return // a storage failure while applying
		}
	}

	// 3. persist entries and HardState in one batch (rule 1)
	if len(rd.Entries) > 0 || !raft.IsEmptyHardState(rd.HardState) {
		var ext []storage.External
		if p, ok := r.cfg.SM.(Persister); ok && len(rd.Entries) > 0 {
			// The state machine writes (and syncs) the entries' bulk
			// first, so that the raft log never names bytes that are not
			// durable.
			var err error
			if ext, err = p.Persist(rd.Entries); err != nil {
				r.fail(ctx, "persist entries", err)
				return
			}
		}
		b := r.cfg.DB.NewBatchWithSize(readyBatchSize(rd.Entries, ext))
		if err := r.store.Append(b, rd.Entries, ext); err != nil {
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

	// 4. send the votes and append acknowledgements, now durable
	if after {
		r.send(rd.Messages, true)
	}

	// 5. apply committed entries that arrived in this Ready
	if len(rest) > 0 && !r.stopped {
		r.apply(ctx, rest)
	}

	// 6. Advance
	r.rn.Advance(rd)
	if r.rn.HasReady() {
		r.scheduleReady(ctx)
	}
}

// readyBatchSize bounds from above the Pebble batch that persists ents and
// a HardState: each entry's data plus room for its key, its term and type,
// and the record's kind and length varints.
func readyBatchSize(ents []*pb.Entry, ext []storage.External) int {
	n := 256 // batch header, HardState, a DeleteRange of a conflicting tail
	for i, e := range ents {
		n += len(e.Data) + 64
		if ext != nil {
			n -= ext[i].Len
		}
	}
	return n
}

// send hands msgs to the transport: those that wait for persistence when
// durable is set, the others when not. It reports whether any message was
// held back for the durable pass.
func (r *Replica) send(msgs []*pb.Message, durable bool) (held bool) {
	if len(msgs) == 0 || r.cfg.Transport == nil {
		return false
	}
	out := r.outbox[:0]
	for _, m := range msgs {
		if waitsForPersist(m.GetType()) != durable {
			held = held || !durable
			continue
		}
		if m.GetType() == pb.MsgSnap {
			r.sendSnapshot(m) // on a connection of its own, with its body
			continue
		}
		out = append(out, m)
	}
	if len(out) > 0 {
		r.cfg.Transport.Send(r.cfg.Group, out)
	}
	clear(out)
	r.outbox = out[:0]
	return held
}

// waitsForPersist reports the message types that vote, on an election or
// on an append, and so may leave only once what they vote on is durable;
// etcd-raft holds back the same three (raft.go, msgsAfterAppend).
func waitsForPersist(t pb.MessageType) bool {
	return t == pb.MsgAppResp || t == pb.MsgVoteResp || t == pb.MsgPreVoteResp
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
		if r.leader && e.GetTerm() == r.leaderTerm && !r.ready.Load() {
			if p, ok := r.cfg.SM.(Preparer); ok {
				// Everything before this entry is applied, and this
				// leader proposed nothing yet (propose held it). Before
				// the leadership is published: a handler that sees it
				// reads a TxnGuard of this leadership, not a stale one.
				p.Lead(true)
			}
			r.ready.Store(true)
			r.readyOnce.Do(func() { close(r.readyCh) })
			r.publishLeader()
			if len(r.waiting) > 0 {
				// Not from inside this Ready: after it is done.
				ctx.Send(ctx.Self(), releaseNow{})
			}
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

func (r *Replica) setLeader(ctx actor.Context, leader bool, lead uint64) {
	if p, ok := r.cfg.SM.(Preparer); ok {
		p.Lead(false) // until this replica is a ready leader (again)
	}
	if r.leader && !leader && len(r.cfg.Voters) > 1 {
		for _, p := range r.waiting {
			r.reply(ctx, p, nil, ErrNotLeader)
		}
		r.waiting = nil
	}
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
	r.lead.Store(lead)
	if !leader {
		r.ready.Store(false)
		r.status.Store(nil) // GroupStatus is the leader's view only
		r.publishLeader()
		return
	}
	r.leaderTerm = r.rn.BasicStatus().GetTerm()
	r.publishLeader()
	r.releaseWaiting(ctx)
}
