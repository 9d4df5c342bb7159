package raftactor

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// The controller's raft snapshot is its whole state, small enough to be
// the snapshot's Data: no body streams beside it.

// Snapshot implements Snapshotter.
func (c *Controller) Snapshot(index uint64) ([]byte, func(io.Writer) error, error) {
	v, err := json.Marshal(controllerState{Applied: index, Metadata: c.md.Load()})
	return v, nil, err
}

// Restore implements Snapshotter.
func (c *Controller) Restore(index uint64, data []byte, _ any, b *pebble.Batch) error {
	var st controllerState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("controller snapshot: %w", err)
	}
	if st.Metadata == nil || st.Metadata.Topics == nil {
		return fmt.Errorf("controller snapshot without metadata")
	}
	st.Applied = index
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := b.Set(controllerKey, v, nil); err != nil {
		return err
	}
	st.Metadata.index()
	c.restoring = st.Metadata
	c.restoredAt = index
	return nil
}

// Installed implements Snapshotter: publish the snapshot's metadata and
// let the node bring its replicas in line with it.
func (c *Controller) Installed() error {
	old, cur := c.md.Load(), c.restoring
	c.restoring = nil
	if cur == nil {
		return errSnapshotUnstaged
	}
	c.applied, c.trimmed = c.restoredAt, c.restoredAt
	c.md.Store(cur)
	if c.onChange != nil {
		c.onChange(old, cur)
	}
	return nil
}
