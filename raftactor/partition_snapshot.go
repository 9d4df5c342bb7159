package raftactor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/chronik-actor/chronik-actor/storage"
)

// A partition's raft snapshot: the descriptor is the checkpoint a
// follower needs (position, producer table with the open transactions,
// aborted-transaction index, epochs); the body is the
// segment files of the leader's read view, which a follower stages in
// <dir>.snap-<index>, fsyncs, and swaps in for its own directory.

type partitionSnapshot struct {
	Checkpoint partitionCheckpoint   `json:"checkpoint"`
	Segments   []storage.SegmentCopy `json:"segments"`
}

// stagedPartition is a snapshot's segments written and fsynced here.
type stagedPartition struct {
	dir  string
	desc partitionSnapshot
}

// Snapshot implements Snapshotter. The view taken now matches index: the
// replica publishes one after every apply, and Snapshot runs between them.
func (p *Partition) Snapshot(index uint64) ([]byte, func(io.Writer) error, error) {
	v := p.log.View()
	segs := v.Segments()
	desc := partitionSnapshot{
		Checkpoint: partitionCheckpoint{Index: index, Position: v.Position(), Producers: p.producers.snapshot(), Epochs: append([]EpochStart(nil), p.epochs...), Clock: p.clock, Aborted: append([]AbortedTxn(nil), p.aborted...)},
		Segments:   segs,
	}
	data, err := json.Marshal(desc)
	if err != nil {
		return nil, nil, err
	}
	return data, func(w io.Writer) error { return storage.WriteSegments(w, segs) }, nil
}

// StageSnapshot writes a snapshot's streamed segments beside the
// partition's directory and checks them against the descriptor. It runs
// on the transport's goroutine: it touches only the staging directory.
func (p *Partition) StageSnapshot(index uint64, data []byte, body io.Reader) (any, error) {
	var desc partitionSnapshot
	if err := json.Unmarshal(data, &desc); err != nil {
		return nil, fmt.Errorf("snapshot descriptor: %w", err)
	}
	dir := fmt.Sprintf("%s.snap-%d", p.cfg.Dir, index)
	got, err := storage.ReceiveSegments(dir, body)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if len(got) != len(desc.Segments) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("snapshot of %d segments carried %d", len(desc.Segments), len(got))
	}
	for i, s := range got {
		if s.Base != desc.Segments[i].Base || s.Size != desc.Segments[i].Size {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("snapshot segment %d: got %d/%d bytes, descriptor says %d/%d", i, s.Base, s.Size, desc.Segments[i].Base, desc.Segments[i].Size)
		}
	}
	return &stagedPartition{dir: dir, desc: desc}, nil
}

func (p *Partition) restoreKey() []byte { return storage.GroupMetaKey(p.cfg.Group, "restore") }

// Restore implements Snapshotter: the snapshot's checkpoint replaces the
// partition's, with a marker naming the staged directory, so that a crash
// before Installed finished the swap finishes it at the next open.
func (p *Partition) Restore(index uint64, data []byte, staged any, b *pebble.Batch) error {
	st, ok := staged.(*stagedPartition)
	if !ok {
		if staged == nil {
			return errSnapshotUnstaged
		}
		return errUnexpectedStaged(staged)
	}
	cp := st.desc.Checkpoint
	cp.Index = index
	v, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if err := b.Set(storage.GroupMetaKey(p.cfg.Group, "checkpoint"), v, nil); err != nil {
		return err
	}
	if err := b.Set(p.restoreKey(), []byte(filepath.Base(st.dir)), nil); err != nil {
		return err
	}
	p.restoring = st
	return nil
}

// Installed implements Snapshotter: swap the staged directory in, reopen
// the log there, and take the snapshot's producers, aborted-transaction
// index and epochs.
func (p *Partition) Installed() error {
	st := p.restoring
	p.restoring = nil
	if st == nil {
		return errSnapshotUnstaged
	}
	if err := p.log.Close(); err != nil {
		return err
	}
	if err := storage.SwapDir(p.cfg.Dir, st.dir); err != nil {
		return err
	}
	l, err := storage.OpenPartitionLog(p.cfg.Dir, p.cfg.Log, st.desc.Checkpoint.Position)
	if err != nil {
		return err
	}
	p.log = l
	p.producers = newProducerTable()
	if st.desc.Checkpoint.Producers != nil {
		p.producers.m = st.desc.Checkpoint.Producers
	}
	p.aborted = st.desc.Checkpoint.Aborted
	p.pruneAborted(l.View().LogStartOffset())
	// The transaction state before the view: see TxnView.LastStable.
	p.publishTxns(true)
	p.pubLog.Store(l)
	p.epochs = st.desc.Checkpoint.Epochs
	p.next = st.desc.Checkpoint.Position.NextOffset
	p.unapplied, p.spec = nil, nil
	p.clock = st.desc.Checkpoint.Clock
	p.publishEpochs()
	p.sinceCp = 0
	p.durableBase = st.desc.Checkpoint.Position.SegmentBase
	if o := p.cfg.Observer; o != nil {
		if r, ok := o.(interface{ Reset() }); ok {
			r.Reset()
		}
		if err := replayLog(l.View(), o); err != nil {
			return err
		}
	}
	b := p.cfg.DB.NewBatch()
	_ = b.Delete(p.restoreKey(), nil)
	return p.cfg.DB.Commit(b, false)
}

// finishRestore completes, at open, a snapshot install a crash cut short,
// and removes staging directories of snapshots never installed.
func finishRestore(cfg PartitionConfig) error {
	key := storage.GroupMetaKey(cfg.Group, "restore")
	v, err := cfg.DB.Get(key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return err
	default:
		staged := filepath.Join(filepath.Dir(cfg.Dir), string(v))
		if _, err := os.Stat(staged); err == nil {
			if err := storage.SwapDir(cfg.Dir, staged); err != nil {
				return err
			}
		}
		b := cfg.DB.NewBatch()
		_ = b.Delete(key, nil)
		if err := cfg.DB.Commit(b, true); err != nil {
			return err
		}
	}
	leftovers, _ := filepath.Glob(cfg.Dir + ".snap-*")
	for _, d := range leftovers {
		if !strings.HasSuffix(d, "-delete") {
			_ = os.RemoveAll(d)
		}
	}
	_ = os.RemoveAll(cfg.Dir + ".old")
	return nil
}
