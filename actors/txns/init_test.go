package txns

import (
	"errors"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestInitNewIDGetsProducerIDAtEpochZero(t *testing.T) {
	h := newHarness(t, Config{})
	pid, epoch := h.init("a")
	if pid != 1001 || epoch != 0 {
		t.Fatalf("init: pid %d epoch %d, want 1001 0", pid, epoch)
	}
	recs := h.replica("a").records("a")
	if len(recs) != 1 || recs[0].State != stateEmpty || recs[0].ProducerID != pid || recs[0].ProducerEpoch != 0 || recs[0].TimeoutMillis != 60000 {
		t.Fatalf("records: %+v, want one Empty at pid %d epoch 0", recs, pid)
	}
	// Another id gets another producer id.
	if pid2, epoch2 := h.init("b"); pid2 == pid || epoch2 != 0 {
		t.Fatalf("second id: pid %d epoch %d", pid2, epoch2)
	}
}

func TestReinitBumpsEpochAndFencesTheOldProducer(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e0 := h.init("a")
	pid1, e1 := h.init("a")
	if pid1 != pid || e1 != e0+1 {
		t.Fatalf("re-init: pid %d epoch %d, want %d %d", pid1, e1, pid, e0+1)
	}
	parts := map[string][]int32{"foo": {0}}

	// The old epoch is fenced: PRODUCER_FENCED for the versions since
	// KIP-588, INVALID_PRODUCER_EPOCH before.
	for _, c := range []struct {
		version int16
		want    *kerr.Error
	}{{3, kerr.ProducerFenced}, {2, kerr.ProducerFenced}, {1, kerr.InvalidProducerEpoch}, {0, kerr.InvalidProducerEpoch}} {
		op := addOp("a", pid, e0, parts)
		op.Version = c.version
		wantErr(t, "AddPartitions at the old epoch", h.add(op).Err, c.want)
		op.Group, op.Partitions, op.Key = "g", nil, kmsg.AddOffsetsToTxn.Int16()
		wantErr(t, "AddOffsets at the old epoch", h.add(op).Err, c.want)
		got := h.call("a", endReq("a", c.version, pid, e0, true)).(*kerr.Error)
		wantErr(t, "EndTxn at the old epoch", got, c.want)
	}
	// The new one works.
	h.mustAdd("a", pid, e1, parts)
	wantErr(t, "commit at the new epoch", h.end("a", pid, e1, true), nil)
}

func TestInitDuringOpenTxnAbortsItAtABumpedEpoch(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e0 := h.init("a")
	h.mustAdd("a", pid, e0, map[string][]int32{"foo": {0, 1}, "bar": {1}})

	res := h.initWith(initReq("a", 4, -1, -1))
	wantErr(t, "init during an open txn", res.Err, kerr.ConcurrentTransactions)
	if res.ProducerID != -1 || res.ProducerEpoch != -1 {
		t.Fatalf("error answer carries pid %d epoch %d", res.ProducerID, res.ProducerEpoch)
	}
	h.waitState("a", stateCompleteAbort)
	ms := h.waitMarkers(1)
	m := ms[0]
	if m.Commit || m.ProducerID != pid || m.ProducerEpoch != e0+1 || m.CoordinatorEpoch != 1 {
		t.Fatalf("markers %+v, want an abort at epoch %d, coordinator epoch 1", m, e0+1)
	}
	if len(m.Partitions["foo"]) != 2 || len(m.Partitions["bar"]) != 1 {
		t.Fatalf("markers to %v", m.Partitions)
	}
	got := states(h.replica("a").records("a"))
	want := []string{"Empty", "Ongoing", "PrepareAbort", "CompleteAbort"}
	if len(got) != len(want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("records %v, want %v", got, want)
		}
	}
	// The old producer is fenced.
	wantErr(t, "old producer's commit", h.end("a", pid, e0, true), kerr.ProducerFenced)
	// The retry succeeds, past the epoch the abort took.
	pid2, e2 := h.init("a")
	if pid2 != pid || e2 != e0+2 {
		t.Fatalf("retry: pid %d epoch %d, want %d %d", pid2, e2, pid, e0+2)
	}
}

func TestInitWhileTheAbortIsInFlightIsConcurrent(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e0 := h.init("a")
	h.mustAdd("a", pid, e0, map[string][]int32{"foo": {0}})
	release := h.node.holdMarkers()
	defer release()
	wantErr(t, "first init", h.initWith(initReq("a", 4, -1, -1)).Err, kerr.ConcurrentTransactions)
	h.waitMarkers(1)
	// A second init waits for the abort to complete, then gets its epoch.
	second := h.send("a", initReq("a", 4, -1, -1))
	h.pending(second, "init while the markers are out")
	release()
	res := h.await(second).(*InitResult)
	if res.Err != nil || res.ProducerEpoch != e0+2 {
		t.Fatalf("init after the abort: %v epoch %d, want epoch %d", res.Err, res.ProducerEpoch, e0+2)
	}
	if v, _ := h.stored("a"); v.State != stateEmpty || v.ProducerEpoch != e0+2 {
		t.Fatalf("stored %s at epoch %d", stateName(v.State), v.ProducerEpoch)
	}
}

func TestInitKIP360(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e0 := h.init("a")

	// The current producer recovers: its epoch is bumped.
	res := h.initWith(initReq("a", 4, pid, e0))
	if res.Err != nil || res.ProducerID != pid || res.ProducerEpoch != e0+1 {
		t.Fatalf("recovery: %+v, want pid %d epoch %d", res, pid, e0+1)
	}
	e1 := res.ProducerEpoch

	// Another producer id, or an epoch never handed out, is fenced:
	// PRODUCER_FENCED from v4 (KIP-588), INVALID_PRODUCER_EPOCH at v3.
	for _, c := range []struct {
		pid   int64
		epoch int16
	}{{pid + 1, e1}, {pid, e1 + 1}} {
		wantErr(t, "v4 wrong producer", h.initWith(initReq("a", 4, c.pid, c.epoch)).Err, kerr.ProducerFenced)
		wantErr(t, "v3 wrong producer", h.initWith(initReq("a", 3, c.pid, c.epoch)).Err, kerr.InvalidProducerEpoch)
	}
	// Nothing changed for the real producer.
	if v, _ := h.stored("a"); v.ProducerEpoch != e1 || v.ProducerID != pid {
		t.Fatalf("stored %+v after fenced inits", v)
	}
	h.mustAdd("a", pid, e1, map[string][]int32{"foo": {0}})
}

func TestInitNewIDFailures(t *testing.T) {
	h := newHarness(t, Config{})
	// No producer id to be had: retriable, and the id is not kept.
	perr := error(errors.New("no controller"))
	h.node.pidErr.Store(&perr)
	wantErr(t, "init without a controller", h.initWith(initReq("a", 4, -1, -1)).Err, kerr.CoordinatorNotAvailable)
	h.node.pidErr.Store(nil)

	// The write fails: the id is forgotten too.
	r := h.replica("a")
	r.failWith.Store(kerr.NotEnoughReplicas)
	wantErr(t, "init, write refused", h.initWith(initReq("a", 4, -1, -1)).Err, kerr.CoordinatorNotAvailable)
	r.failWith.Store(kerr.NotLeaderForPartition)
	wantErr(t, "init, not leader", h.initWith(initReq("a", 4, -1, -1)).Err, kerr.NotCoordinator)
	r.failWith.Store(nil)
	if _, ok := h.stored("a"); ok {
		t.Fatal("a stored after failed inits")
	}
	wantErr(t, "add for an id not initialized", h.add(addOp("a", 1001, 0, map[string][]int32{"foo": {0}})).Err, kerr.InvalidProducerIDMapping)
	if _, e := h.init("a"); e != 0 {
		t.Fatalf("epoch %d once the writes work, want 0", e)
	}
}

func TestUnknownIDOrProducerIsInvalidMapping(t *testing.T) {
	h := newHarness(t, Config{})
	parts := map[string][]int32{"foo": {0}}
	wantErr(t, "add, unknown id", h.add(addOp("nope", 5, 0, parts)).Err, kerr.InvalidProducerIDMapping)
	wantErr(t, "end, unknown id", h.end("nope", 5, 0, true), kerr.InvalidProducerIDMapping)
	off := &AddOp{TransactionalID: "nope", ProducerID: 5, Group: "g", Key: kmsg.AddOffsetsToTxn.Int16(), Version: 3}
	wantErr(t, "add offsets, unknown id", h.add(off).Err, kerr.InvalidProducerIDMapping)

	pid, e := h.init("a")
	wantErr(t, "add, another pid", h.add(addOp("a", pid+7, e, parts)).Err, kerr.InvalidProducerIDMapping)
	wantErr(t, "end, another pid", h.end("a", pid+7, e, false), kerr.InvalidProducerIDMapping)
}

func TestInitKIP360OlderEpochIsFenced(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e0 := h.init("a")
	e1 := h.initWith(initReq("a", 4, pid, e0)).ProducerEpoch
	if e1 != e0+1 {
		t.Fatalf("recovery: epoch %d, want %d", e1, e0+1)
	}
	n := len(h.replica("a").records("a"))
	// A retry of that call (its answer lost) gets the same epoch again,
	// writing nothing.
	res := h.initWith(initReq("a", 4, pid, e0))
	if res.Err != nil || res.ProducerID != pid || res.ProducerEpoch != e1 {
		t.Fatalf("retry: %+v, want pid %d epoch %d", res, pid, e1)
	}
	if got := len(h.replica("a").records("a")); got != n {
		t.Fatalf("retry wrote %d records", got-n)
	}
	e2 := h.initWith(initReq("a", 4, pid, e1)).ProducerEpoch
	if e2 != e1+1 {
		t.Fatalf("second recovery: epoch %d", e2)
	}
	// A producer at an epoch fenced before is fenced again, not handed
	// a new epoch that would fence the current producer.
	wantErr(t, "v4 stale epoch", h.initWith(initReq("a", 4, pid, e0)).Err, kerr.ProducerFenced)
	wantErr(t, "v3 stale epoch", h.initWith(initReq("a", 3, pid, e0)).Err, kerr.InvalidProducerEpoch)
	h.mustAdd("a", pid, e2, map[string][]int32{"foo": {0}})
	wantErr(t, "commit", h.end("a", pid, e2, true), nil)
	h.waitState("a", stateCompleteCommit)

	// A new producer (no epoch named) takes over: the previous one's
	// epochs are all fenced now.
	_, e3 := h.init("a")
	wantErr(t, "after a new producer", h.initWith(initReq("a", 4, pid, e2)).Err, kerr.ProducerFenced)
	wantErr(t, "after a new producer, older", h.initWith(initReq("a", 4, pid, e1)).Err, kerr.ProducerFenced)
	if v, _ := h.stored("a"); v.ProducerEpoch != e3 {
		t.Fatalf("stored epoch %d, want %d", v.ProducerEpoch, e3)
	}
}

func TestEpochExhaustion(t *testing.T) {
	h := newHarness(t, Config{}, func(h *harness) {
		h.writeRecord(&txn{id: "a", pid: 50, epoch: math.MaxInt16 - 2, timeoutMs: 60000, state: stateCompleteCommit, start: -1, updated: nowMs()})
		open := &txn{id: "b", pid: 60, epoch: math.MaxInt16 - 1, timeoutMs: 60000, state: stateOngoing, start: nowMs(), updated: nowMs()}
		open.add("foo", 0)
		h.writeRecord(open)
	})
	// The last epoch an InitProducerId hands out is MaxInt16-1; the
	// next one starts a new producer id at 0.
	if pid, e := h.init("a"); pid != 50 || e != math.MaxInt16-1 {
		t.Fatalf("bump to the last epoch: pid %d epoch %d", pid, e)
	}
	if pid, e := h.init("a"); pid == 50 || e != 0 {
		t.Fatalf("after the last epoch: pid %d epoch %d, want a new pid at 0", pid, e)
	}
	// An open transaction at the last epoch is still fenced: its abort
	// takes MaxInt16, and the retry gets a new producer id.
	wantErr(t, "init over an open txn", h.initWith(initReq("b", 4, -1, -1)).Err, kerr.ConcurrentTransactions)
	v := h.waitState("b", stateCompleteAbort)
	m := h.waitMarkers(1)[0]
	if v.ProducerEpoch != math.MaxInt16 || m.ProducerEpoch != math.MaxInt16 || m.Commit {
		t.Fatalf("fencing abort at epoch %d (markers %+v), want %d", v.ProducerEpoch, m, math.MaxInt16)
	}
	wantErr(t, "old producer", h.end("b", 60, math.MaxInt16-1, false), kerr.ProducerFenced)
	if pid, e := h.init("b"); pid == 60 || e != 0 {
		t.Fatalf("retry: pid %d epoch %d, want a new pid at 0", pid, e)
	}
}

// TestInitKIP360RecoversItsOwnAbort: a producer that re-initializes with
// its own id and epoch while its transaction is open (franz-go does to
// abort a transaction whose commit went unanswered) has the transaction
// aborted at a bumped epoch, and its retry is answered with that epoch,
// not fenced; a zombie fenced by a new instance stays fenced.
func TestInitKIP360RecoversItsOwnAbort(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e0 := h.init("a")
	h.mustAdd("a", pid, e0, map[string][]int32{"foo": {0}})
	wantErr(t, "init naming the open transaction's epoch", h.initWith(initReq("a", 4, pid, e0)).Err, kerr.ConcurrentTransactions)
	h.waitState("a", stateCompleteAbort)
	res := h.initWith(initReq("a", 4, pid, e0))
	if res.Err != nil || res.ProducerID != pid || res.ProducerEpoch != e0+1 {
		t.Fatalf("retry: %v pid %d epoch %d, want %d %d", res.Err, res.ProducerID, res.ProducerEpoch, pid, e0+1)
	}

	// A new instance (no epoch named) fences the open transaction's
	// producer for good.
	e1 := res.ProducerEpoch
	h.mustAdd("a", pid, e1, map[string][]int32{"foo": {0}})
	wantErr(t, "new instance", h.initWith(initReq("a", 4, -1, -1)).Err, kerr.ConcurrentTransactions)
	h.waitState("a", stateCompleteAbort)
	wantErr(t, "zombie", h.initWith(initReq("a", 4, pid, e1)).Err, kerr.ProducerFenced)
}
