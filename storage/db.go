package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/cockroachdb/pebble/v2"
)

// DB is the node's one Pebble database: the raft logs of every group and
// the metadata keys. Writes from all replicas go through it, so Pebble's
// commit pipeline merges their fsyncs into few WAL syncs.
type DB struct {
	p *pebble.DB
}

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("storage: key not found")

// OpenDB opens (or creates) the Pebble DB in dir.
func OpenDB(dir string, log *slog.Logger) (*DB, error) {
	opts := &pebble.Options{
		// Raft entries are large (whole record batches) and short-lived:
		// they are trimmed soon after apply. A large memtable lets the trim's
		// range tombstone meet the entries before a flush, so they are
		// dropped instead of written to an SST.
		MemTableSize:                256 << 20,
		MemTableStopWritesThreshold: 2,
		Logger:                      pebbleLogger{log},
	}
	p, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble %s: %w", dir, err)
	}
	return &DB{p: p}, nil
}

// Close closes the DB.
func (d *DB) Close() error { return d.p.Close() }

// NewBatch starts a write batch.
func (d *DB) NewBatch() *pebble.Batch { return d.p.NewBatch() }

// Commit commits b, fsyncing the WAL when sync is set, and closes it.
func (d *DB) Commit(b *pebble.Batch, sync bool) error {
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	err := b.Commit(opt)
	_ = b.Close()
	return err
}

// Get returns a copy of the value of key, or ErrNotFound.
func (d *DB) Get(key []byte) ([]byte, error) {
	v, closer, err := d.p.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, nil
}

// Scan calls fn for every key in [lo, hi) in order; the slices are only
// valid during the call.
func (d *DB) Scan(lo, hi []byte, fn func(k, v []byte) error) error {
	it, err := d.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			_ = it.Close()
			return err
		}
	}
	return it.Close()
}

// Keys are "<kind>/" followed by the group id as 8 big-endian bytes, so a
// group's keys sort together and can be removed with one range delete.

// GroupPrefix is the prefix of every raft key of group.
func GroupPrefix(group uint64) []byte {
	k := make([]byte, 0, 13)
	k = append(k, "raft/"...)
	return binary.BigEndian.AppendUint64(k, group)
}

// MetaKey is the key of a metadata record: "meta/<name>".
func MetaKey(name string) []byte { return []byte("meta/" + name) }

// GroupMetaKey is the key of a per-group metadata record, such as a
// partition's checkpoint.
func GroupMetaKey(group uint64, name string) []byte {
	k := binary.BigEndian.AppendUint64([]byte("meta/group/"), group)
	return append(append(k, '/'), name...)
}

// DeleteGroup removes every raft and metadata key of group.
func (d *DB) DeleteGroup(group uint64) error {
	b := d.NewBatch()
	p := GroupPrefix(group)
	_ = b.DeleteRange(p, prefixEnd(p), nil)
	m := binary.BigEndian.AppendUint64([]byte("meta/group/"), group)
	_ = b.DeleteRange(m, prefixEnd(m), nil)
	return d.Commit(b, false)
}

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// pebbleLogger sends Pebble's own log lines to slog; Fatalf is a storage
// failure and stops the node (fail-stop).
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble", "fatal", true)
	os.Exit(70)
}

// Groups lists the raft groups that have keys in the DB, skipping from one
// group to the next rather than reading their entries.
func (d *DB) Groups() ([]uint64, error) {
	lo := []byte("raft/")
	it, err := d.p.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, err
	}
	var out []uint64
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < len(lo)+8 {
			ok = it.Next()
			continue
		}
		g := binary.BigEndian.Uint64(k[len(lo):])
		out = append(out, g)
		ok = it.SeekGE(prefixEnd(GroupPrefix(g)))
	}
	return out, it.Close()
}
