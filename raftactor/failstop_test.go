package raftactor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronik-actor/chronik-actor/storage"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// failStopRecorder is an injected FailStop that records its calls and
// returns, where the default would end the process.
type failStopRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (f *failStopRecorder) failStop(reason string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, reason+": "+err.Error())
}

func (f *failStopRecorder) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// TestSegmentWriteFailureStopsReplica: when applying a committed produce
// fails on storage (the partition's directory is gone, so rolling to a new
// segment cannot create its file), the replica calls the injected FailStop
// and answers the proposal with ErrStopped: the write is neither
// acknowledged nor made visible, and the replica refuses what comes after
// instead of carrying on as if the write had succeeded.
func TestSegmentWriteFailureStopsReplica(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, filepath.Join(dir, "db"))
	t.Cleanup(func() { db.Close() })
	partDir := filepath.Join(dir, "partitions", "t-0")
	sm, applied, err := OpenPartition(PartitionConfig{
		Group: testGroup,
		Dir:   partDir,
		DB:    db,
		// Every batch after the first rolls to a new segment file.
		Log: storage.LogOptions{SegmentBytes: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	var fs failStopRecorder
	r, err := NewReplica(Config{
		Group: testGroup, NodeID: 1, Voters: []uint64{1}, DB: db, SM: sm, Applied: applied,
		Log: quietLogger(), CheckpointEvery: time.Hour, FailStop: fs.failStop,
	})
	if err != nil {
		t.Fatal(err)
	}
	sys := newSystem()
	t.Cleanup(sys.Shutdown)
	rpid, results := spawnCollector(sys, nil)
	pid := sys.Root.Spawn(r.Props())
	t.Cleanup(func() { _ = sys.Root.StopFuture(pid).Wait() })
	propose := func(token string, n int) *Result {
		t.Helper()
		sys.Root.Send(pid, &Propose{Data: EncodeProduce(testBatch(token, n)), ReplyTo: rpid, Token: token})
		return waitResults(t, results, 1)[token]
	}

	first := produceResult(t, propose("first", 3))
	if first.BaseOffset != 0 {
		t.Fatalf("first batch at offset %d, want 0", first.BaseOffset)
	}
	if err := os.RemoveAll(partDir); err != nil {
		t.Fatal(err)
	}

	res := propose("second", 2)
	if !errors.Is(res.Err, ErrStopped) || res.Value != nil {
		t.Fatalf("proposal whose apply failed answered %v, %+v; want ErrStopped and no value", res.Err, res.Value)
	}
	wait.For(t, 10*time.Second, func() error {
		calls := fs.get()
		if len(calls) != 1 {
			return fmt.Errorf("FailStop called %d times: %q", len(calls), calls)
		}
		if c := calls[0]; !strings.HasPrefix(c, "persist entries (raft group 5)") || !strings.Contains(c, partDir) {
			return fmt.Errorf("FailStop call %q does not name the op, the group and the partition", c)
		}
		return nil
	})
	if hw := sm.View().HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d after the failed apply, want 3 (the failed batch never visible)", hw)
	}

	// Stopped, not carrying on: the next proposal is refused. Results
	// reach the collector in the order the replica sent them, so any
	// late answer to "second" would have arrived before this one.
	if res := propose("third", 1); !errors.Is(res.Err, ErrStopped) {
		t.Fatalf("proposal after the failure answered %v, %+v; want ErrStopped", res.Err, res.Value)
	}
	select {
	case extra := <-results:
		t.Fatalf("unexpected result after the failure: %+v", extra)
	default:
	}
	if calls := fs.get(); len(calls) != 1 {
		t.Fatalf("FailStop called %d times, want once: %q", len(calls), calls)
	}
}
