package txns

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
	"github.com/chronik-actor/chronik-actor/protocol"
)

func TestAddPartitionsOpensTheTxn(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	h.mustAdd("a", pid, e, map[string][]int32{"foo": {0, 2}})
	v := h.waitState("a", stateOngoing)
	if v.StartTimestamp <= 0 || len(v.Topics) != 1 || v.Topics[0].Topic != "foo" || !reflect.DeepEqual(v.Topics[0].Partitions, []int32{0, 2}) {
		t.Fatalf("stored %+v", v)
	}
	start := v.StartTimestamp
	n := len(h.replica("a").records("a"))
	// Adding what is in already writes nothing.
	h.mustAdd("a", pid, e, map[string][]int32{"foo": {2}})
	if got := len(h.replica("a").records("a")); got != n {
		t.Fatalf("%d records after adding nothing new, want %d", got, n)
	}
	// More partitions join, the start stays.
	h.mustAdd("a", pid, e, map[string][]int32{"bar": {1}})
	v, _ = h.stored("a")
	if v.StartTimestamp != start || len(v.Topics) != 2 {
		t.Fatalf("stored %+v after a second add", v)
	}
}

func TestAddUnknownPartitionAddsNothing(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	res := h.add(addOp("a", pid, e, map[string][]int32{"foo": {0, 9}, "nope": {0}, "bar": {1}}))
	if res.Err != nil {
		t.Fatalf("request error %v", res.Err)
	}
	want := map[string]map[int32]*kerr.Error{
		"foo":  {0: kerr.OperationNotAttempted, 9: kerr.UnknownTopicOrPartition},
		"nope": {0: kerr.UnknownTopicOrPartition},
		"bar":  {1: kerr.OperationNotAttempted},
	}
	if !reflect.DeepEqual(res.Partitions, want) {
		t.Fatalf("answer %v, want %v", res.Partitions, want)
	}
	if v, _ := h.stored("a"); v.State != stateEmpty || len(v.Topics) != 0 {
		t.Fatalf("stored %+v, want Empty with nothing", v)
	}
	// Nothing open: EndTxn has nothing to end.
	wantErr(t, "end after a refused add", h.end("a", pid, e, true), kerr.InvalidTxnState)
}

func TestVerifyOnly(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	verify := func(parts map[string][]int32) *AddResult {
		op := addOp("a", pid, e, parts)
		op.VerifyOnly, op.Version = true, 4
		return h.add(op)
	}
	// Nothing open: no partition is in it.
	res := verify(map[string][]int32{"foo": {0}})
	wantErr(t, "verify with nothing open", res.Partitions["foo"][0], kerr.InvalidTxnState)

	h.mustAdd("a", pid, e, map[string][]int32{"foo": {0}})
	res = verify(map[string][]int32{"foo": {0, 1}, "bar": {0}})
	want := map[string]map[int32]*kerr.Error{"foo": {0: nil, 1: kerr.InvalidTxnState}, "bar": {0: kerr.InvalidTxnState}}
	if res.Err != nil || !reflect.DeepEqual(res.Partitions, want) {
		t.Fatalf("verify: %v %v, want %v", res.Err, res.Partitions, want)
	}
	// Verifying adds nothing.
	if v, _ := h.stored("a"); len(v.Topics) != 1 || len(v.Topics[0].Partitions) != 1 {
		t.Fatalf("stored %+v after verifying", v)
	}
	// A stale producer is fenced, an unknown one unmapped.
	op := addOp("a", pid, e-1, map[string][]int32{"foo": {0}})
	op.VerifyOnly, op.Version = true, 4
	wantErr(t, "verify, old epoch", h.add(op).Err, kerr.ProducerFenced)
	op.ProducerID, op.ProducerEpoch = pid+1, e
	wantErr(t, "verify, other pid", h.add(op).Err, kerr.InvalidProducerIDMapping)
}

func TestVerifyWhileAnAddIsBeingWritten(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	h.mustAdd("a", pid, e, map[string][]int32{"foo": {0}})
	r := h.replica("a")
	r.stalled.Store(true)
	adding := h.send("a", addOp("a", pid, e, map[string][]int32{"bar": {0}}))
	h.pending(adding, "add with its write stalled")
	// The partition already in the transaction is verified (Kafka does
	// not look at the pending state there); the one being added is not
	// in it yet.
	op := addOp("a", pid, e, map[string][]int32{"foo": {0}, "bar": {0}})
	op.VerifyOnly, op.Version = true, 4
	res := h.add(op)
	want := map[string]map[int32]*kerr.Error{"foo": {0: nil}, "bar": {0: kerr.InvalidTxnState}}
	if res.Err != nil || !reflect.DeepEqual(res.Partitions, want) {
		t.Fatalf("verify during an add: %v %v, want %v", res.Err, res.Partitions, want)
	}
	h.sys.Root.Send(r.PID(), releaseWrites{})
	if err := addErr(h.await(adding).(*AddResult)); err != nil {
		t.Fatalf("stalled add: %v", err)
	}
}

func TestAddOffsetsAddsTheGroupsPartition(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	op := &AddOp{TransactionalID: "a", ProducerID: pid, ProducerEpoch: e, Group: "my-group", Key: kmsg.AddOffsetsToTxn.Int16(), Version: 3}
	if err := addErr(h.add(op)); err != nil {
		t.Fatalf("add offsets: %v", err)
	}
	gp := protocol.CoordinatorPartition("my-group", testOffsetsPartitions)
	v := h.waitState("a", stateOngoing)
	if len(v.Topics) != 1 || v.Topics[0].Topic != groups.OffsetsTopic || !reflect.DeepEqual(v.Topics[0].Partitions, []int32{gp}) {
		t.Fatalf("stored %+v, want %s/%d", v.Topics, groups.OffsetsTopic, gp)
	}
	wantErr(t, "commit", h.end("a", pid, e, true), nil)
	m := h.waitMarkers(1)[0]
	if !reflect.DeepEqual(m.Partitions, map[string][]int32{groups.OffsetsTopic: {gp}}) || !m.Commit {
		t.Fatalf("markers %+v", m)
	}
}

func TestEndTxnCommit(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	h.mustAdd("a", pid, e, map[string][]int32{"foo": {0, 1}, "bar": {1}})
	release := h.node.holdMarkers()
	defer release()
	// The producer is answered once the Prepare record is written, before
	// the markers.
	wantErr(t, "commit", h.end("a", pid, e, true), nil)
	ms := h.waitMarkers(1)
	m := ms[0]
	want := Markers{ProducerID: pid, ProducerEpoch: e, Commit: true, CoordinatorEpoch: 1,
		Partitions: map[string][]int32{"foo": {0, 1}, "bar": {1}}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("markers %+v, want %+v", m, want)
	}
	if v, _ := h.stored("a"); v.State != statePrepareCommit {
		t.Fatalf("stored %s while the markers are out", stateName(v.State))
	}
	// A retry meanwhile waits for the end to complete, and succeeds; the
	// opposite outcome waits too, and is refused.
	retry := h.send("a", endReq("a", 3, pid, e, true))
	opposite := h.send("a", endReq("a", 3, pid, e, false))
	h.pending(retry, "commit retry during markers")
	h.pending(opposite, "abort during markers")
	release()
	wantErr(t, "commit retry during markers", h.await(retry).(*kerr.Error), nil)
	wantErr(t, "abort during markers", h.await(opposite).(*kerr.Error), kerr.InvalidTxnState)
	v := h.waitState("a", stateCompleteCommit)
	if len(v.Topics) != 0 || v.ProducerEpoch != e {
		t.Fatalf("completed %+v", v)
	}
	got := states(h.replica("a").records("a"))
	if !reflect.DeepEqual(got, []string{"Empty", "Ongoing", "PrepareCommit", "CompleteCommit"}) {
		t.Fatalf("records %v", got)
	}
	if n := len(h.node.markerCalls()); n != 1 {
		t.Fatalf("%d marker calls, want 1", n)
	}

	// A retry of the completed end succeeds; the opposite is refused.
	wantErr(t, "commit retry", h.end("a", pid, e, true), nil)
	wantErr(t, "abort after commit", h.end("a", pid, e, false), kerr.InvalidTxnState)

	// The next transaction starts clean.
	h.mustAdd("a", pid, e, map[string][]int32{"bar": {0}})
	wantErr(t, "abort", h.end("a", pid, e, false), nil)
	h.waitState("a", stateCompleteAbort)
	m = h.waitMarkers(2)[1]
	if m.Commit || !reflect.DeepEqual(m.Partitions, map[string][]int32{"bar": {0}}) {
		t.Fatalf("second markers %+v", m)
	}
	wantErr(t, "abort retry", h.end("a", pid, e, false), nil)
	wantErr(t, "commit after abort", h.end("a", pid, e, true), kerr.InvalidTxnState)
}

func TestEndTxnWithNothingOpen(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	wantErr(t, "commit of nothing", h.end("a", pid, e, true), kerr.InvalidTxnState)
	wantErr(t, "abort of nothing", h.end("a", pid, e, false), kerr.InvalidTxnState)
	if n := len(h.node.markerCalls()); n != 0 {
		t.Fatalf("%d marker calls", n)
	}
}

func TestEndTxnWriteFails(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	h.mustAdd("a", pid, e, map[string][]int32{"foo": {0}})
	r := h.replica("a")
	r.failWith.Store(kerr.RequestTimedOut)
	wantErr(t, "commit, write timed out", h.end("a", pid, e, true), kerr.CoordinatorNotAvailable)
	r.failWith.Store(nil)
	// Still open: the retry goes through.
	wantErr(t, "commit retry", h.end("a", pid, e, true), nil)
	h.waitState("a", stateCompleteCommit)
}

func TestMarkerFailuresAreRetried(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	h.mustAdd("a", pid, e, map[string][]int32{"foo": {0, 1}, "bar": {0}})
	h.node.failMarkers("foo", 1, kerr.NotLeaderForPartition, kerr.RequestTimedOut)
	h.node.failMarkers("bar", 0, kerr.NotEnoughReplicas)
	// A partition gone, or past this epoch, counts as written.
	h.node.failMarkers("foo", 0, kerr.UnknownTopicOrPartition)
	wantErr(t, "commit", h.end("a", pid, e, true), nil)
	h.waitState("a", stateCompleteCommit)
	ms := h.node.markerCalls()
	want := []map[string][]int32{
		{"foo": {0, 1}, "bar": {0}},
		{"foo": {1}, "bar": {0}},
		{"foo": {1}},
	}
	if len(ms) != len(want) {
		t.Fatalf("marker calls %+v, want %d", ms, len(want))
	}
	for i, m := range ms {
		if !reflect.DeepEqual(m.Partitions, want[i]) || !m.Commit || m.ProducerEpoch != e {
			t.Fatalf("marker call %d: %+v, want to %v", i, m, want[i])
		}
	}
}

func TestMarkersFencedUnloadThePartition(t *testing.T) {
	h := newHarness(t, Config{})
	ids := sameStateIDs(h.co, 2)
	a, b := ids[0], ids[1]
	pid, e := h.init(a)
	h.mustAdd(a, pid, e, map[string][]int32{"foo": {0}})

	// b waits for a producer id when a's markers come back fenced:
	// another coordinator leads the partition, so b is let go.
	release := h.node.holdProducerIDs()
	defer release()
	initB := h.send(b, initReq(b, 4, -1, -1))
	h.pending(initB, "init of b")
	h.node.alwaysFailMarkers("foo", 0, kerr.TransactionCoordinatorFenced)
	holdMarkers := h.node.holdMarkers()
	wantErr(t, "commit", h.end(a, pid, e, true), nil)
	h.waitMarkers(1)
	holdMarkers()
	wantErr(t, "b after the fence", h.await(initB).(*InitResult).Err, kerr.NotCoordinator)
	release()
	if v, _ := h.stored(a); v.State != statePrepareCommit {
		t.Fatalf("a is %s after the fence, want PrepareCommit", stateName(v.State))
	}

	// Here still the leader (the fence came from an old view), the next
	// call loads again, and the markers go out again.
	h.node.alwaysFailMarkers("foo", 0, nil)
	wantErr(t, "commit retry (it waits for the markers)", h.end(a, pid, e, true), nil)
	h.waitState(a, stateCompleteCommit)
}

func TestTimedOutTxnIsAbortedAtABumpedEpoch(t *testing.T) {
	h := newHarness(t, Config{SweepInterval: 10 * time.Millisecond})
	req := initReq("a", 4, -1, -1)
	req.TransactionTimeoutMillis = 50
	res := h.initWith(req)
	pid, e := res.ProducerID, res.ProducerEpoch
	// A transaction that stays under its timeout is left alone.
	long := initReq("b", 4, -1, -1)
	lres := h.initWith(long)
	h.mustAdd("b", lres.ProducerID, lres.ProducerEpoch, map[string][]int32{"bar": {0}})

	h.mustAdd("a", pid, e, map[string][]int32{"foo": {0}})
	v := h.waitState("a", stateCompleteAbort)
	if v.ProducerEpoch != e+1 {
		t.Fatalf("aborted at epoch %d, want %d", v.ProducerEpoch, e+1)
	}
	var m Markers
	for _, c := range h.node.markerCalls() {
		if c.ProducerID == pid {
			m = c
		}
	}
	if m.Commit || m.ProducerEpoch != e+1 || !reflect.DeepEqual(m.Partitions, map[string][]int32{"foo": {0}}) {
		t.Fatalf("markers %+v", m)
	}
	// Its producer is fenced.
	wantErr(t, "commit of the timed-out txn", h.end("a", pid, e, true), kerr.ProducerFenced)
	wantErr(t, "add after the timeout", h.add(addOp("a", pid, e, map[string][]int32{"foo": {0}})).Err, kerr.ProducerFenced)
	if v, _ := h.stored("b"); v.State != stateOngoing {
		t.Fatalf("b is %s, want Ongoing", stateName(v.State))
	}
}

func TestTakeOverCompletesAPreparedCommit(t *testing.T) {
	prepared := &txn{id: "a", pid: 77, epoch: 3, timeoutMs: 60000, state: statePrepareCommit, start: nowMs() - 1000, updated: nowMs()}
	prepared.add("foo", 1)
	prepared.add("bar", 0)
	aborting := &txn{id: "b", pid: 78, epoch: 5, timeoutMs: 60000, state: statePrepareAbort, start: nowMs() - 1000, updated: nowMs()}
	aborting.add("foo", 2)
	h := newHarness(t, Config{SweepInterval: 10 * time.Millisecond}, func(h *harness) {
		// The previous leader wrote the Prepare records, then died.
		h.writeRecord(prepared)
		h.writeRecord(aborting)
		for _, r := range h.node.replicas {
			r.term.Store(4)
		}
	})
	// No client asks: the sweep takes the partitions over.
	v := h.waitState("a", stateCompleteCommit)
	if v.ProducerID != 77 || v.ProducerEpoch != 3 || len(v.Topics) != 0 {
		t.Fatalf("completed %+v", v)
	}
	h.waitState("b", stateCompleteAbort)
	byPID := map[int64]Markers{}
	for _, m := range h.node.markerCalls() {
		byPID[m.ProducerID] = m
	}
	want := Markers{ProducerID: 77, ProducerEpoch: 3, Commit: true, CoordinatorEpoch: 4,
		Partitions: map[string][]int32{"foo": {1}, "bar": {0}}}
	if !reflect.DeepEqual(byPID[77], want) {
		t.Fatalf("markers %+v, want %+v", byPID[77], want)
	}
	if m := byPID[78]; m.Commit || m.ProducerEpoch != 5 || m.CoordinatorEpoch != 4 {
		t.Fatalf("abort markers %+v", m)
	}
	if got := states(h.replica("a").records("a")); !reflect.DeepEqual(got, []string{"CompleteCommit"}) {
		t.Fatalf("records written %v", got)
	}
	// The producer's retry of its commit succeeds.
	wantErr(t, "commit retry after the take-over", h.end("a", 77, 3, true), nil)
}

func TestCallsHeldAtHandOffGetNotCoordinator(t *testing.T) {
	h := newHarness(t, Config{SweepInterval: 10 * time.Millisecond})
	pid, e := h.init("a")
	r := h.replica("a")
	r.stalled.Store(true)
	adding := h.send("a", addOp("a", pid, e, map[string][]int32{"foo": {0}}))
	h.pending(adding, "add with its write stalled")
	// Leadership is lost: the sweep lets the partition go.
	r.ready.Store(false)
	wantErr(t, "held add", h.await(adding).(*AddResult).Err, kerr.NotCoordinator)
	wantErr(t, "add while not leading", h.add(addOp("a", pid, e, map[string][]int32{"foo": {0}})).Err, kerr.NotCoordinator)
	h.sys.Root.Send(r.PID(), releaseWrites{drop: true})

	// Leading again in a new term: loaded again from the store.
	r.term.Store(2)
	r.ready.Store(true)
	h.mustAdd("a", pid, e, map[string][]int32{"foo": {0}})
	wantErr(t, "commit", h.end("a", pid, e, true), nil)
	m := h.waitMarkers(1)[0]
	if m.CoordinatorEpoch != 2 {
		t.Fatalf("markers at coordinator epoch %d, want 2", m.CoordinatorEpoch)
	}
	h.waitState("a", stateCompleteCommit)
}

func TestNewTermReleasesHeldCalls(t *testing.T) {
	h := newHarness(t, Config{})
	ids := sameStateIDs(h.co, 2)
	a, b := ids[0], ids[1]
	pid, e := h.init(a)
	r := h.replica(a)
	r.stalled.Store(true)
	adding := h.send(a, addOp(a, pid, e, map[string][]int32{"foo": {0}}))
	h.pending(adding, "add with its write stalled")
	// A new term here (re-elected): the next call reloads, and the held
	// one is answered; its write, lost with the old term, never lands.
	r.term.Store(2)
	h.sys.Root.Send(r.PID(), releaseWrites{drop: true})
	pb, _ := h.init(b)
	wantErr(t, "add held over the new term", h.await(adding).(*AddResult).Err, kerr.NotCoordinator)
	if pb == 0 {
		t.Fatal("b got no producer id")
	}
	h.mustAdd(a, pid, e, map[string][]int32{"foo": {0}})
}

func TestStopAnswersHeldCalls(t *testing.T) {
	h := newHarness(t, Config{})
	release := h.node.holdProducerIDs()
	defer release()
	ch := h.send("a", initReq("a", 4, -1, -1))
	h.pending(ch, "init")
	h.co.Stop()
	wantErr(t, "init held at stop", h.await(ch).(*InitResult).Err, kerr.NotCoordinator)
	wantErr(t, "init after stop", h.call("a", initReq("a", 4, -1, -1)).(*InitResult).Err, kerr.NotCoordinator)
}

func TestCoordinatorErr(t *testing.T) {
	h := newHarness(t, Config{})
	if err := h.co.CoordinatorErr("a"); err != nil {
		t.Fatalf("leader: %v", err)
	}
	r := h.replica("a")
	r.ready.Store(false)
	wantErr(t, "not ready", h.co.CoordinatorErr("a"), kerr.CoordinatorLoadInProgress)
	wantErr(t, "call while not ready", h.initWith(initReq("a", 4, -1, -1)).Err, kerr.NotCoordinator)
	// A follower sends the client to look the coordinator up again.
	r.follower.Store(true)
	wantErr(t, "follower", h.co.CoordinatorErr("a"), kerr.NotCoordinator)
	r.follower.Store(false)
	r.ready.Store(true)
	if got := h.co.Partitions(); got != testStatePartitions {
		t.Fatalf("partitions %d", got)
	}
	// An id's partition is Kafka's: abs(hashCode) % partitions.
	for i := range 20 {
		id := fmt.Sprintf("id-%d", i)
		if h.co.PartitionFor(id) != protocol.CoordinatorPartition(id, testStatePartitions) {
			t.Fatalf("partition of %s", id)
		}
	}
}
func TestPanicRespawnsThePartition(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	g := "boom"
	h.node.panicGroup.Store(&g)
	op := &AddOp{TransactionalID: "a", ProducerID: pid, ProducerEpoch: e, Group: g, Key: kmsg.AddOffsetsToTxn.Int16(), Version: 3}
	wantErr(t, "call that panicked", h.add(op).Err, kerr.NotCoordinator)
	h.node.panicGroup.Store(nil)
	// The next call gets a new actor, loaded again from the log (the
	// held call is answered after the dead actor is forgotten).
	h.mustAdd("a", pid, e, map[string][]int32{"foo": {0}})
	h.waitState("a", stateOngoing)
}

// TestAddWaitsForTheEnd: a producer that begins its next transaction
// while the markers of the last are out is answered once they are
// written (Kafka answers CONCURRENT_TRANSACTIONS at once, and clients
// back off), and its partitions open the next transaction in the record
// that takes the Complete record's place.
func TestAddWaitsForTheEnd(t *testing.T) {
	h := newHarness(t, Config{})
	pid, e := h.init("a")
	h.mustAdd("a", pid, e, map[string][]int32{"foo": {0}})
	release := h.node.holdMarkers()
	defer release()
	wantErr(t, "commit", h.end("a", pid, e, true), nil)
	h.waitMarkers(1)
	add := h.send("a", addOp("a", pid, e, map[string][]int32{"foo": {2}}))
	h.pending(add, "add during markers")
	release()
	if err := addErr(h.await(add).(*AddResult)); err != nil {
		t.Fatalf("add after the end: %v", err)
	}
	v := h.waitState("a", stateOngoing)
	if len(v.Topics) != 1 || v.Topics[0].Topic != "foo" || !reflect.DeepEqual(v.Topics[0].Partitions, []int32{2}) {
		t.Fatalf("next transaction %+v", v.Topics)
	}
	got := states(h.replica("a").records("a"))
	if !reflect.DeepEqual(got, []string{"Empty", "Ongoing", "PrepareCommit", "Ongoing"}) {
		t.Fatalf("records %v", got)
	}
	// The next end runs as any other.
	wantErr(t, "second commit", h.end("a", pid, e, true), nil)
	h.waitState("a", stateCompleteCommit)
	if ms := h.node.markerCalls(); len(ms) != 2 || !reflect.DeepEqual(ms[1].Partitions, map[string][]int32{"foo": {2}}) {
		t.Fatalf("markers %+v", ms)
	}
}
