package raftactor

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/storage"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openDB(t *testing.T, dir string) *storage.DB {
	t.Helper()
	db, err := storage.OpenDB(dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quietLogger() }))
}

// testBatch builds a valid magic-2 batch of n records whose values name
// tag and the record's index.
func testBatch(tag string, n int) []byte {
	recs := make([]protocol.Record, n)
	for i := range recs {
		recs[i] = protocol.Record{Key: []byte(tag), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
	}
	return protocol.BuildBatch(recs, 1700000000000)
}

// idempotentBatch is testBatch with a producer id, epoch and base
// sequence, and its CRC recomputed over them.
func idempotentBatch(tag string, n int, pid int64, epoch int16, seq int32) []byte {
	b := testBatch(tag, n)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// collector is an actor that hands every *Result it receives to a channel,
// after calling onResult (when set) on the collector's goroutine.
func spawnCollector(sys *actor.ActorSystem, onResult func(*Result)) (*actor.PID, <-chan *Result) {
	ch := make(chan *Result, 1024)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if r, ok := c.Message().(*Result); ok {
			if onResult != nil {
				onResult(r)
			}
			ch <- r
		}
	}))
	return pid, ch
}

// waitResults collects n results, keyed by token, failing after a deadline.
func waitResults(t *testing.T, ch <-chan *Result, n int) map[any]*Result {
	t.Helper()
	out := make(map[any]*Result, n)
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case r := <-ch:
			if _, dup := out[r.Token]; dup {
				t.Fatalf("two results for token %v", r.Token)
			}
			out[r.Token] = r
		case <-deadline:
			t.Fatalf("got %d of %d results before the deadline", len(out), n)
		}
	}
	return out
}

func produceResult(t *testing.T, r *Result) *ProduceResult {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("token %v: %v", r.Token, r.Err)
	}
	pr, ok := r.Value.(*ProduceResult)
	if !ok {
		t.Fatalf("token %v: value %T, want *ProduceResult", r.Token, r.Value)
	}
	if pr.Err != nil {
		t.Fatalf("token %v: %v", r.Token, pr.Err)
	}
	return pr
}

// commitCheckpoint does what the replica does with a checkpoint: Run, Save
// in a batch committed with a sync, then Saved when it asked for one.
func commitCheckpoint(t *testing.T, db *storage.DB, cp Checkpoint) {
	t.Helper()
	if err := cp.Run(); err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	if err := cp.Save(b); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	if sc, ok := cp.(SyncedCheckpoint); ok && sc.MustSync() {
		if err := sc.Saved(); err != nil {
			t.Fatal(err)
		}
	}
}

// applyAsLeader takes cmd through what a ready leader and the persist step
// do with it before apply (Prepare, Persist), and applies it at index.
func applyAsLeader(t testing.TB, p *Partition, index, term uint64, cmd []byte, now time.Time) any {
	t.Helper()
	if p.spec == nil {
		p.Lead(true)
	}
	entry, v, ok := p.Prepare(cmd, term, now)
	if !ok {
		return v
	}
	e := &pb.Entry{Index: &index, Term: &term, Data: entry}
	if _, err := p.Persist([]*pb.Entry{e}); err != nil {
		t.Fatal(err)
	}
	return p.Apply(index, term, entry[CommandHeader:])
}
