package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// DB is the node's one Pebble database: the raft logs of every group and
// the metadata keys. Writes from all replicas go through it, so Pebble's
// commit pipeline merges their fsyncs into few WAL syncs.
type DB struct {
	p        *pebble.DB
	bgLog    *rateLog
	failStop func(reason string, err error)
	// failed is set once Pebble reported a fatal error. Pebble goes on
	// after its Logger.Fatalf returns (a failed WAL write in a commit is
	// reported there and the commit then returns nil), so a FailStop that
	// returns must not leave later commits looking durable.
	failed atomic.Pointer[error]
}

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("storage: key not found")

// ErrFailed wraps the error of every commit after Pebble reported a fatal
// error: nothing written from then on can be vouched for.
var ErrFailed = errors.New("storage: the database failed")

// DBOptions configures OpenDBWith.
type DBOptions struct {
	Log *slog.Logger // nil discards
	// FailStop is called when storage fails in a way the node cannot
	// recover from: Pebble's fatal errors here, and (through raftactor)
	// every replica's failed write. nil means ExitFailStop(Log). It may be
	// called from any goroutine, more than once, and must be safe for
	// concurrent use.
	FailStop func(reason string, err error)
}

// ExitFailStop is the default fail-stop: one error line naming the failed
// operation and its cause, then exit status 70 (EX_SOFTWARE). A storage
// error leaves the node's durable state unknown; exiting before anything
// else is acknowledged leaves recovery to the restart, which replays the
// synced raft log.
func ExitFailStop(log *slog.Logger) func(reason string, err error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return func(reason string, err error) {
		// err.Error(), not err: Pebble's errors print a stack trace with
		// %+v, and an operator gets one line.
		log.Error("storage failure, stopping the node", "op", reason, "err", err.Error())
		os.Exit(70)
	}
}

// OpenDB opens (or creates) the Pebble DB in dir, failing stop with
// ExitFailStop(log).
func OpenDB(dir string, log *slog.Logger) (*DB, error) {
	return OpenDBWith(dir, DBOptions{Log: log})
}

// OpenDBWith opens (or creates) the Pebble DB in dir.
func OpenDBWith(dir string, o DBOptions) (*DB, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.FailStop == nil {
		o.FailStop = ExitFailStop(o.Log)
	}
	d := &DB{failStop: o.FailStop, bgLog: &rateLog{l: o.Log, interval: time.Second}}
	opts := &pebble.Options{
		// Raft entries are large (whole record batches) and short-lived:
		// they are trimmed soon after apply. A large memtable lets the trim's
		// range tombstone meet the entries before a flush, so they are
		// dropped instead of written to an SST.
		MemTableSize:                256 << 20,
		MemTableStopWritesThreshold: 2,
		Logger:                      pebbleLogger{o.Log, d},
		EventListener:               &pebble.EventListener{BackgroundError: d.backgroundError},
	}
	p, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble %s: %w", dir, err)
	}
	d.p = p
	return d, nil
}

// FailStop is the node's fail-stop function this DB was opened with.
func (d *DB) FailStop() func(reason string, err error) { return d.failStop }

// fatal records a fatal Pebble error and hands it to FailStop.
func (d *DB) fatal(err error) {
	d.failed.CompareAndSwap(nil, &err)
	d.failStop("pebble", err)
}

// Failed is the fatal error Pebble reported, or nil.
func (d *DB) Failed() error {
	if e := d.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// Close closes the DB.
func (d *DB) Close() error { return d.p.Close() }

// NewBatch starts a write batch.
func (d *DB) NewBatch() *pebble.Batch { return d.p.NewBatch() }

// NewBatchWithSize is NewBatch with room for size bytes of operations up
// front. A batch that outgrows its buffer doubles it and copies what it
// holds, and Pebble keeps no buffer over 1 MiB for reuse, so a batch of
// large raft entries would otherwise copy its data about once more on
// the way to its size.
func (d *DB) NewBatchWithSize(size int) *pebble.Batch { return d.p.NewBatchWithSize(size) }

// Commit commits b, fsyncing the WAL when sync is set, and closes it.
func (d *DB) Commit(b *pebble.Batch, sync bool) error {
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	err := b.Commit(opt)
	_ = b.Close()
	if err == nil {
		// Checked after the commit: Pebble reports a failed WAL write of
		// this very commit through Fatalf and then returns nil.
		if f := d.Failed(); f != nil {
			err = fmt.Errorf("%w: %w", ErrFailed, f)
		}
	}
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
// failure and goes to the DB's FailStop.
type pebbleLogger struct {
	l  *slog.Logger
	db *DB
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.db.fatal(fmt.Errorf(format, args...))
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
