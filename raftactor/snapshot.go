package raftactor

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/storage"
)

// Raft snapshots: a follower that needs entries its leader has trimmed is
// sent the leader's state whole. The snapshot's Data is a small descriptor
// of the state at the leader's applied index; the bulk (a partition's
// segment files) streams beside it on a connection of its own, is staged
// and fsynced on the follower before raft sees the MsgSnap, and is
// installed when raft hands the snapshot back in a Ready.

// Snapshotter is a StateMachine that can be sent whole to a follower.
type Snapshotter interface {
	// Snapshot describes the state at index (everything applied). body,
	// when not nil, streams the bulk of it; it runs on the transport's
	// goroutine, so it may only read what the state machine never changes
	// in place (a read view's files).
	Snapshot(index uint64) (data []byte, body func(io.Writer) error, err error)
	// Restore replaces the state with a snapshot's: data from Snapshot on
	// the leader, staged what StageSnapshot built of its body here (nil
	// without a body). It records the new state in b, which the replica
	// commits synced together with the raft log's reset; Installed then
	// runs once b is durable.
	Restore(index uint64, data []byte, staged any, b *pebble.Batch) error
	Installed() error
}

// SnapshotSender is a Transport that also streams snapshots.
type SnapshotSender interface {
	// SendSnapshot streams m (a MsgSnap) and body to m.To, then reports
	// through the node (SnapshotStatus to the replica) how it went.
	SendSnapshot(group uint64, m *pb.Message, body func(io.Writer) error)
}

// SnapshotStatus reports how sending a snapshot to To went.
type SnapshotStatus struct {
	To uint64
	OK bool
}

// replicaStorage is the replica's raft.Storage: the LogStore, with
// snapshots built from the state machine.
type replicaStorage struct {
	*storage.LogStore
	r *Replica
}

// Snapshot implements raft.Storage. etcd-raft asks for one when a
// follower needs entries below FirstIndex; a state machine that cannot be
// sent whole answers ErrSnapshotTemporarilyUnavailable, the contract's way
// of saying "later".
func (s replicaStorage) Snapshot() (*pb.Snapshot, error) {
	r := s.r
	sn, ok := r.cfg.SM.(Snapshotter)
	if !ok || r.stopped {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	if c := r.outSnap; c != nil && c.snap.GetMetadata().GetIndex() == r.applied {
		return c.snap, nil
	}
	term, err := s.LogStore.Term(r.applied)
	if err != nil {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	data, body, err := sn.Snapshot(r.applied)
	if err != nil {
		r.log.Warn("snapshot", "group", r.cfg.Group, "err", err)
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	snap := &pb.Snapshot{Data: data, Metadata: &pb.SnapshotMetadata{
		Index: u64(r.applied), Term: u64(term), ConfState: &pb.ConfState{Voters: append([]uint64(nil), r.cfg.Voters...)},
	}}
	r.outSnap = &outSnapshot{snap: snap, body: body}
	return snap, nil
}

func u64(v uint64) *uint64 { return &v }

// outSnapshot is the snapshot this replica last built as a leader.
type outSnapshot struct {
	snap *pb.Snapshot
	body func(io.Writer) error
}

// sendSnapshot hands a MsgSnap to the transport with its body.
func (r *Replica) sendSnapshot(m *pb.Message) {
	ss, ok := r.cfg.Transport.(SnapshotSender)
	c := r.outSnap
	if !ok || c == nil || c.snap.GetMetadata().GetIndex() != m.GetSnapshot().GetMetadata().GetIndex() {
		r.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
		return
	}
	body := c.body
	if body == nil {
		body = func(io.Writer) error { return nil }
	}
	ss.SendSnapshot(r.cfg.Group, m, body)
}

// staged holds, per snapshot index, what the transport staged for this
// replica before handing raft the MsgSnap. Safe from any goroutine.
type stagedSnapshots struct {
	mu sync.Mutex
	m  map[uint64]any
}

func (s *stagedSnapshots) put(index uint64, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[uint64]any{}
	}
	s.m[index] = v
}

func (s *stagedSnapshots) take(index uint64) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[index]
	delete(s.m, index)
	return v, ok
}

// Stager is a Snapshotter whose snapshots carry a body, written to a
// staging area off the replica's goroutine as it streams in.
type Stager interface {
	StageSnapshot(index uint64, data []byte, body io.Reader) (any, error)
}

// ReceiveSnapshot stages the body of a snapshot a leader streams (m is
// its MsgSnap); the node then steps m into the replica, whose Ready
// installs what was staged. Safe from any goroutine: staging touches only
// the staging area.
func (r *Replica) ReceiveSnapshot(m *pb.Message, body io.Reader) error {
	snap := m.GetSnapshot()
	if m.GetType() != pb.MsgSnap || snap == nil {
		return fmt.Errorf("raftactor: a %v where a snapshot was expected", m.GetType())
	}
	var staged any
	if st, ok := r.cfg.SM.(Stager); ok {
		v, err := st.StageSnapshot(snap.GetMetadata().GetIndex(), snap.GetData(), body)
		if err != nil {
			return err
		}
		staged = v
	}
	r.stagedSnaps.put(snap.GetMetadata().GetIndex(), staged)
	return nil
}

var errSnapshotUnstaged = errors.New("raftactor: snapshot arrived without its staged data")

// installSnapshot restores the state machine and resets the raft log to
// the snapshot, in one synced Pebble batch (etcd-raft: a Ready's Snapshot
// is persisted before its Entries, and applied before CommittedEntries).
func (r *Replica) installSnapshot(snap *pb.Snapshot) error {
	sn, ok := r.cfg.SM.(Snapshotter)
	if !ok {
		return errSnapshotUnsupported
	}
	md := snap.GetMetadata()
	staged, ok := r.stagedSnaps.take(md.GetIndex())
	if !ok {
		staged = nil
	}
	b := r.cfg.DB.NewBatch()
	if err := sn.Restore(md.GetIndex(), snap.GetData(), staged, b); err != nil {
		_ = b.Close()
		return err
	}
	r.store.ApplySnapshot(b, md.GetIndex(), md.GetTerm(), md.GetConfState().GetVoters())
	if err := r.cfg.DB.Commit(b, true); err != nil {
		return err
	}
	if err := sn.Installed(); err != nil {
		return err
	}
	r.applied = md.GetIndex()
	r.installed.Add(1)
	r.log.Info("installed a raft snapshot", "group", r.cfg.Group, "index", md.GetIndex(), "term", md.GetTerm())
	return nil
}

// errUnexpectedStaged is a staged value of the wrong kind.
func errUnexpectedStaged(v any) error { return fmt.Errorf("raftactor: staged snapshot of type %T", v) }

// SnapshotsInstalled counts the raft snapshots this replica installed
// since it started. Safe from any goroutine.
func (r *Replica) SnapshotsInstalled() int64 { return r.installed.Load() }
