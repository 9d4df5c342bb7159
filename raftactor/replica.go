package raftactor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/storage"
)

// Config describes one replica of one raft group on this node.
type Config struct {
	Group   uint64
	NodeID  uint64
	Voters  []uint64 // the group's members when it is first created
	DB      *storage.DB
	SM      StateMachine
	Applied uint64 // the state machine's durable applied index
	Log     *slog.Logger
	// CheckpointEvery bounds how long applied entries stay in the raft log
	// before a checkpoint trims it.
	CheckpointEvery time.Duration
	// FailStop is told of a storage failure (the op that failed and its
	// cause); nil means DB's (storage.DBOptions.FailStop, by default log and
	// exit 70). Whether or not it returns, the replica has stopped: it
	// persists, applies and acknowledges nothing more, and answers every
	// proposal, pending or new, with ErrStopped.
	FailStop func(reason string, err error)
	// RetainLogBytes bounds the raft log a leader keeps for followers that
	// lag (default 64 MiB); past it they are caught up by a snapshot.
	RetainLogBytes int
	// PeerUp, when set, tells whether a peer's node is connected; a
	// leader quiesces without waiting for followers that are not.
	PeerUp func(id uint64) bool
	// Transport carries this group's messages to the other voters; nil
	// for a group of one.
	Transport Transport
	// OnLeader, when set, hears every change of who leads the group, its
	// term, and whether this replica is a ready leader; it runs on the
	// replica's goroutine and must not block (the node's leader table).
	OnLeader func(LeaderInfo)
}

// Transport sends raft messages to other nodes. Send must not block: a
// message it cannot queue is dropped (raft retransmits), and the transport
// tells the replica with Unreachable.
type Transport interface {
	Send(group uint64, msgs []*pb.Message)
}

// LeaderInfo is what a replica tells the node's leader table.
type LeaderInfo struct {
	Group  uint64
	Leader uint64 // 0 when unknown
	Term   uint64
	// Ready: this replica leads and has applied an entry of its term.
	Ready bool
}

// Replica is the actor owning one RawNode. Only its Receive touches the
// RawNode, the LogStore and the state machine.
type Replica struct {
	cfg     Config
	rn      *raft.RawNode
	store   *storage.LogStore
	log     *slog.Logger
	leader  bool
	applied uint64

	nextID     uint64
	pending    map[uint64]*Propose // proposal id -> proposer, on the leader
	leaderTerm uint64              // the term of pending's proposals
	waiting    []*Propose          // proposals held until a single voter leads
	acks       []appliedAck        // applied in this Ready, not yet answered

	readyQueued bool
	cpRunning   bool
	lastCp      time.Time
	deleted     bool
	stopped     bool

	outbox   []*pb.Message        // reused by send
	caughtUp map[uint64]time.Time // leader: when each voter last matched the log's end
	lastSeen uint64               // leader: last index at the previous tick
	lead     atomic.Uint64        // who leads, as raft last told
	status   atomic.Pointer[Status]
	inbound  atomic.Int32 // Steps queued (AcceptStep)

	outSnap     *outSnapshot // the snapshot last built for a follower
	stagedSnaps stagedSnapshots
	installed   atomic.Int64
	quiet       bool // not ticking (quiesce.go)
	quietFlag   atomic.Bool
	idleTicks   int
	trimmedTo   atomic.Uint64 // the raft log's last trimmed index
	term        atomic.Int64  // current term = leader epoch, read by handlers
	ready       atomic.Bool   // leader that has applied everything committed before its term
	readyCh     chan struct{}
	deleting    atomic.Bool // set before the node renames the data away
	readyOnce   sync.Once
}

// FirstReady is closed the first time the replica is LeaderReady: after a
// restart, its log has then been replayed in full.
func (r *Replica) FirstReady() <-chan struct{} { return r.readyCh }

// LeaderReady reports whether this replica leads and has applied an entry
// of its own term, hence every entry committed before it: state built at
// apply (consumer groups) is then complete. Safe from any goroutine.
func (r *Replica) LeaderReady() bool { return r.ready.Load() }

// Term is the group's current term, which is the partition's leader epoch.
// Safe from any goroutine.
func (r *Replica) Term() int32 { return int32(r.term.Load()) }

// Leader is the node id raft last named as the group's leader, 0 when it
// knows none. Safe from any goroutine.
func (r *Replica) Leader() uint64 { return r.lead.Load() }

// Leads reports whether raft names this replica the group's leader,
// ready or not: with LeaderReady false, a leader still applying what came
// before its term. Safe from any goroutine.
func (r *Replica) Leads() bool { return r.Leader() == r.cfg.NodeID }

// Group is the replica's raft group.
func (r *Replica) Group() uint64 { return r.cfg.Group }

// Voters are the group's configured members.
func (r *Replica) Voters() []uint64 { return r.cfg.Voters }

// NewReplica opens the group's raft log and builds the RawNode; the caller
// spawns the actor with Props.
func NewReplica(cfg Config) (*Replica, error) {
	var lo storage.LogStoreOptions
	if p, ok := cfg.SM.(Persister); ok {
		lo = storage.LogStoreOptions{Load: p.LoadExternal, Applied: cfg.Applied}
	}
	store, err := storage.OpenLogStoreWith(cfg.DB, cfg.Group, cfg.Voters, lo)
	if err != nil {
		return nil, err
	}
	applied := cfg.Applied
	if hs, _, _ := store.InitialState(); applied > hs.GetCommit() {
		// A state machine that persists as it applies (the controller)
		// can be ahead of the durable commit index: a Ready's entries are
		// applied before the HardState committing them is persisted, and
		// a crash may fall in between. raft panics on Applied > Commit;
		// start from the commit index instead, and the state machine
		// skips the entries it already holds when they come again.
		applied = hs.GetCommit()
	}
	if first, _ := store.FirstIndex(); applied < first-1 {
		// The state machine can never be behind the trimmed log: it is
		// trimmed only after a checkpoint. A bootstrapped log starts at 1.
		applied = first - 1
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = time.Second
	}
	if cfg.FailStop == nil {
		cfg.FailStop = cfg.DB.FailStop()
	}
	if cfg.RetainLogBytes <= 0 {
		cfg.RetainLogBytes = defaultRetainBytes
	}
	r := &Replica{
		cfg:     cfg,
		store:   store,
		log:     cfg.Log,
		applied: applied,
		pending: make(map[uint64]*Propose),
		readyCh: make(chan struct{}),
		lastCp:  time.Now(),
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: cfg.NodeID,
		// With the node's 100 ms tick and a heartbeat every tick, a
		// follower campaigns 500 ms to 1 s (raft randomizes over
		// [ElectionTick, 2*ElectionTick)) after it last heard from its
		// leader: a SIGKILLed leader's partition takes writes again in
		// about 0.6 s (BenchmarkFailover), under the 1 s the cluster
		// aims at. 10 ticks made that 1 to 2 s, 1.3 s typically.
		ElectionTick:              5,
		HeartbeatTick:             1,
		Storage:                   replicaStorage{store, r},
		Applied:                   applied,
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  64 << 20,
		MaxUncommittedEntriesSize: 256 << 20,
		MaxInflightMsgs:           256,
		CheckQuorum:               true,
		PreVote:                   true,
		// A follower never hands a proposal on: a stale leader's forwarded
		// proposal could commit while its proposer was told NOT_LEADER.
		// Clients retry on the leader they find in Metadata instead.
		DisableProposalForwarding: true,
		Logger:                    raftLogger{cfg.Log},
	})
	if err != nil {
		return nil, fmt.Errorf("raft group %d: %w", cfg.Group, err)
	}
	r.rn = rn
	return r, nil
}

// Props spawns r. Its mailbox is bounded where the messages come from, not
// in the queue: protoactor's bounded queue blocks a sender when full, and a
// blocked replica (its own readyNow) or connection would deadlock the node.
// Every proposal comes from a request, and the node caps connections and
// each connection's requests in flight (actors.maxInFlight), so at most
// connections x maxInFlight x partitions-per-request proposals can queue.
// A panic stops the replica rather than restarting it over state that may
// be half-applied.
func (r *Replica) Props() *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return r },
		actor.WithMailbox(actor.Unbounded()),
		actor.WithGuardian(stopOnPanic))
}

var stopOnPanic = actor.NewOneForOneStrategy(0, 10*time.Second, func(reason any) actor.Directive {
	return actor.StopDirective
})

// Receive implements actor.Actor.
func (r *Replica) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.start(ctx)
	case *Propose:
		r.propose(ctx, m)
	case readyNow:
		r.readyQueued = false
		r.handleReady(ctx)
	case releaseNow:
		r.releaseWaiting(ctx)
	case *Tick:
		r.tick(ctx)
	case *Step:
		if r.wakes(m.Msgs) {
			r.wake()
		}
		r.step(ctx, m)
	case *Quiesce:
		r.quiesce(m)
	case *PeerChanged:
		r.peerChanged(m)
	case *Unreachable:
		r.rn.ReportUnreachable(m.To)
	case *SnapshotStatus:
		st := raft.SnapshotFinish
		if !m.OK {
			st = raft.SnapshotFailure
		}
		r.rn.ReportSnapshot(m.To, st)
		r.scheduleReady(ctx)
	case *TransferLeadership:
		r.wake()
		r.transfer(ctx, m)
	case *checkpointDone:
		r.finishCheckpoint(ctx, m)
	case *Inspect:
		m.Fn()
	case *Delete:
		r.deleted = true
		ctx.Stop(ctx.Self())
	case *actor.Stopping:
		r.stop(ctx)
	}
}

func (r *Replica) start(ctx actor.Context) {
	// With one voter there is nobody to wait for: campaign at once so the
	// partition serves as soon as it is spawned. With more voters the
	// election timeout (and PreVote) decides.
	if len(r.cfg.Voters) <= 1 {
		if err := r.rn.Campaign(); err != nil {
			r.log.Error("campaign", "group", r.cfg.Group, "err", err)
		}
	}
	st := r.rn.BasicStatus()
	r.leader = st.RaftState == raft.StateLeader
	r.leaderTerm = st.GetTerm()
	r.term.Store(int64(st.GetTerm()))
	r.lead.Store(st.Lead)
	r.publishLeader()
	r.scheduleReady(ctx)
}

func (r *Replica) propose(ctx actor.Context, p *Propose) {
	r.wake()
	if r.stopped {
		r.reply(ctx, p, nil, ErrStopped)
		return
	}
	prep, preparing := r.cfg.SM.(Preparer)
	if !r.leader {
		if len(r.cfg.Voters) <= 1 {
			// A single voter becomes leader in its first Readys after
			// start: hold the proposal until then rather than refuse it.
			r.waiting = append(r.waiting, p)
			return
		}
		r.reply(ctx, p, nil, ErrNotLeader)
		return
	}
	if (preparing && !r.ready.Load()) || len(r.waiting) > 0 {
		// Prepare decides from the applied state plus this leader's own
		// proposals, which is the state after the whole log only once
		// everything committed before this term is applied: hold the
		// proposal until then (one round trip after the election). While
		// any are held (releaseNow is on its way), later proposals queue
		// behind them: proposals are entered in the order they came, or a
		// client's pipelined batches would land out of order.
		r.waiting = append(r.waiting, p)
		return
	}
	if len(p.Data) < CommandHeader {
		r.reply(ctx, p, nil, fmt.Errorf("raftactor: command of %d bytes", len(p.Data)))
		return
	}
	data := p.Data
	if preparing {
		entry, v, ok := prep.Prepare(p.Data, r.leaderTerm, time.Now())
		if !ok {
			r.reply(ctx, p, v, nil) // answered without an entry
			return
		}
		data = entry
	}
	r.nextID++
	binary.BigEndian.PutUint64(data, r.nextID)
	if err := r.rn.Propose(data); err != nil {
		if preparing {
			prep.Unprepare()
		}
		if errors.Is(err, raft.ErrProposalDropped) {
			// Raft drops a proposal while leadership is being transferred
			// or when it no longer leads: the client retries elsewhere.
			err = ErrNotLeader
		}
		r.reply(ctx, p, nil, err)
		return
	}
	r.pending[r.nextID] = p
	r.scheduleReady(ctx)
}

// releaseWaiting proposes what was held until this replica led and was
// ready (propose holds it again if it is not).
func (r *Replica) releaseWaiting(ctx actor.Context) {
	held := r.waiting
	r.waiting = nil
	for _, p := range held {
		r.propose(ctx, p)
	}
}

func (r *Replica) reply(ctx actor.Context, p *Propose, v any, err error) {
	if p.ReplyTo != nil {
		ctx.Send(p.ReplyTo, &Result{Token: p.Token, Then: p.Then, Value: v, Err: err})
	}
}

func (r *Replica) scheduleReady(ctx actor.Context) {
	if !r.readyQueued {
		r.readyQueued = true
		ctx.Send(ctx.Self(), readyNow{})
	}
}

// Maintainer is an optional StateMachine hook for housekeeping that
// depends on time rather than on entries (a partition's retention). It
// runs on the replica's goroutine at every tick, before the checkpoint
// check, and decides itself whether anything is due. An error is logged:
// the housekeeping is retried at a later tick.
type Maintainer interface {
	Maintain(now time.Time) error
}

// SyncedCheckpoint is an optional Checkpoint extension. When MustSync
// says so, the Pebble commit that records the checkpoint is synced, and
// Saved then runs on the replica's goroutine: what it does (a partition
// removing the files of segments below its new log start) must not happen
// before the checkpoint is durable.
type SyncedCheckpoint interface {
	Checkpoint
	MustSync() bool
	Saved() error
}

func (r *Replica) tick(ctx actor.Context) {
	if r.stopped {
		return // nothing to maintain or checkpoint over state that failed
	}
	if !r.quiet && !r.maybeQuiesce() {
		r.rn.Tick()
		if r.leader {
			// A group of one too: its Status is what /v1/cluster reports.
			r.trackProgress()
		}
	}
	if m, ok := r.cfg.SM.(Maintainer); ok {
		if err := m.Maintain(time.Now()); err != nil {
			r.log.Warn("maintenance", "group", r.cfg.Group, "err", err)
		}
	}
	if !r.cpRunning && time.Since(r.lastCp) >= r.cfg.CheckpointEvery {
		r.startCheckpoint(ctx)
	}
	if r.rn.HasReady() {
		r.scheduleReady(ctx)
	}
}

func (r *Replica) startCheckpoint(ctx actor.Context) {
	r.lastCp = time.Now()
	cp := r.cfg.SM.Checkpoint(r.applied)
	if cp == nil {
		return
	}
	r.cpRunning = true
	self, sys := ctx.Self(), ctx.ActorSystem()
	go func() {
		err := cp.Run()
		sys.Root.Send(self, &checkpointDone{cp: cp, err: err})
	}()
}

func (r *Replica) finishCheckpoint(ctx actor.Context, m *checkpointDone) {
	r.cpRunning = false
	if r.stopped {
		return
	}
	if m.err != nil {
		r.fail(ctx, "checkpoint", m.err)
		return
	}
	b := r.cfg.DB.NewBatch()
	if err := m.cp.Save(b); err != nil {
		_ = b.Close()
		r.fail(ctx, "checkpoint", err)
		return
	}
	trim := r.trimIndex(m.cp.Index())
	if err := r.store.Compact(b, trim); err != nil {
		_ = b.Close()
		r.fail(ctx, "trim raft log", err)
		return
	}
	// No sync: the checkpoint only trims what the synced raft log still
	// holds, and Pebble's WAL keeps this write behind every earlier one.
	// Unless the checkpoint asks for it (SyncedCheckpoint).
	sc, synced := m.cp.(SyncedCheckpoint)
	synced = synced && sc.MustSync()
	if err := r.cfg.DB.Commit(b, synced); err != nil {
		r.fail(ctx, "trim raft log", err)
		return
	}
	r.trimmedTo.Store(max(r.trimmedTo.Load(), trim))
	if synced {
		if err := sc.Saved(); err != nil {
			r.log.Warn("after checkpoint", "group", r.cfg.Group, "err", err)
		}
	}
}

func (r *Replica) stop(ctx actor.Context) {
	r.halt(ctx)
	if err := r.cfg.SM.Close(r.deleted); err != nil {
		r.log.Error("close replica", "group", r.cfg.Group, "err", err)
	}
	if r.deleted {
		if err := r.cfg.DB.DeleteGroup(r.cfg.Group); err != nil {
			r.log.Error("delete raft group", "group", r.cfg.Group, "err", err)
		}
	}
}

// halt stops the replica acting: every proposal it holds is answered with
// ErrStopped, and propose answers new ones so from now on. Entries already
// acknowledged stay acknowledged; none is acknowledged after this.
func (r *Replica) halt(ctx actor.Context) {
	r.stopped = true
	for id, p := range r.pending {
		r.reply(ctx, p, nil, ErrStopped)
		delete(r.pending, id)
	}
	for _, p := range r.waiting {
		r.reply(ctx, p, nil, ErrStopped)
	}
	r.waiting = nil
	for i, a := range r.acks {
		r.reply(ctx, a.p, nil, ErrStopped)
		r.acks[i] = appliedAck{}
	}
	r.acks = r.acks[:0]
}

// fail handles a storage error: the replica's durable state is unknown,
// and going on could acknowledge writes that are not on disk. It halts the
// replica and hands the error to FailStop, which by default ends the
// process. The replica stays halted whether FailStop returns or not, so
// callers return at once after fail: in particular handleReady must not
// Advance past a Ready whose entries were not persisted. Advance tells
// raft the application "has applied and saved progress in the last Ready
// results" (raft.RawNode.Advance); a single voter would then count the
// unsaved entries as stable on a quorum, commit them and hand them back
// to be applied and acknowledged.
//
// A replica whose partition is being deleted is the exception: the node
// renamed its directory away, so a roll or a sync may fail on a path that
// is gone on purpose. It halts too and waits for its Delete, without
// stopping the node.
func (r *Replica) fail(ctx actor.Context, what string, err error) {
	r.halt(ctx)
	if r.deleting.Load() {
		r.log.Info("storage failure in a replica being deleted", "group", r.cfg.Group, "op", what, "err", err)
		return
	}
	r.cfg.FailStop(fmt.Sprintf("%s (raft group %d)", what, r.cfg.Group), err)
}

// MarkDeleting tells the replica its data is about to be moved away for
// deletion (before its Delete message arrives). Safe from any goroutine.
func (r *Replica) MarkDeleting() { r.deleting.Store(true) }

// TrimmedIndex is the last raft log index trimmed by this replica's
// checkpoints since it started. Safe from any goroutine.
func (r *Replica) TrimmedIndex() uint64 { return r.trimmedTo.Load() }
