package txns

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// harness drives the coordinator the way connections do, through Route,
// over a fake node (fakenode_test.go).
type harness struct {
	t    *testing.T
	sys  *actor.ActorSystem
	node *fakeNode
	co   *Coordinator
}

// within bounds every wait of these tests.
const within = 5 * time.Second

// newHarness starts a coordinator whose replicas all lead at term 1.
// before runs once the stores exist, before the sweep starts (to write
// records into them as a previous leader would have).
func newHarness(t *testing.T, cfg Config, before ...func(h *harness)) *harness {
	t.Helper()
	h := &harness{t: t, node: newFakeNode()}
	h.sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return h.node.log }))
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Hour // no sweep unless the test asks
	}
	if cfg.MarkerRetry == 0 {
		cfg.MarkerRetry = 5 * time.Millisecond
	}
	h.co = New(h.sys, h.node, cfg)
	h.node.startReplicas(h.sys, h.co, 1)
	for _, f := range before {
		f(h)
	}
	h.co.Start()
	t.Cleanup(func() {
		h.co.Stop()
		h.sys.Shutdown()
	})
	return h
}

func (h *harness) replica(id string) *fakeReplica { return h.node.replicas[h.co.PartitionFor(id)] }

// send routes op for id; the answer comes on the channel.
func (h *harness) send(id string, op any) <-chan any {
	ch := make(chan any, 1)
	h.co.Route(id, NewCall(op, func(v any) { ch <- v }))
	return ch
}

func (h *harness) await(ch <-chan any) any {
	h.t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		h.t.Fatal("no answer from the coordinator")
		return nil
	}
}

// pending checks that a held call has not been answered yet.
func (h *harness) pending(ch <-chan any, what string) {
	h.t.Helper()
	select {
	case v := <-ch:
		h.t.Fatalf("%s answered early: %+v", what, v)
	case <-time.After(30 * time.Millisecond):
	}
}

func (h *harness) call(id string, op any) any {
	h.t.Helper()
	return h.await(h.send(id, op))
}

func initReq(id string, version int16, pid int64, epoch int16) *kmsg.InitProducerIDRequest {
	r := kmsg.NewPtrInitProducerIDRequest()
	r.Version, r.TransactionalID, r.TransactionTimeoutMillis = version, &id, 60000
	r.ProducerID, r.ProducerEpoch = pid, epoch
	return r
}

func (h *harness) initWith(req *kmsg.InitProducerIDRequest) *InitResult {
	h.t.Helper()
	return h.call(*req.TransactionalID, req).(*InitResult)
}

// init runs a successful InitProducerId for id (v4, no producer given).
func (h *harness) init(id string) (int64, int16) {
	h.t.Helper()
	res := h.initWith(initReq(id, 4, -1, -1))
	if res.Err != nil {
		h.t.Fatalf("init %s: %v", id, res.Err)
	}
	return res.ProducerID, res.ProducerEpoch
}

func addOp(id string, pid int64, epoch int16, parts map[string][]int32) *AddOp {
	return &AddOp{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Partitions: parts,
		Key: kmsg.AddPartitionsToTxn.Int16(), Version: 3}
}

func (h *harness) add(op *AddOp) *AddResult {
	h.t.Helper()
	return h.call(op.TransactionalID, op).(*AddResult)
}

// mustAdd adds parts to id's transaction, every partition answered ok.
func (h *harness) mustAdd(id string, pid int64, epoch int16, parts map[string][]int32) {
	h.t.Helper()
	res := h.add(addOp(id, pid, epoch, parts))
	if err := addErr(res); err != nil {
		h.t.Fatalf("add %v to %s: %v", parts, id, err)
	}
}

// addErr is the first error of res, nil when all went well.
func addErr(res *AddResult) error {
	if res.Err != nil {
		return res.Err
	}
	for topic, ps := range res.Partitions {
		for p, err := range ps {
			if err != nil {
				return fmt.Errorf("%s/%d: %w", topic, p, err)
			}
		}
	}
	return nil
}

func endReq(id string, version int16, pid int64, epoch int16, commit bool) *kmsg.EndTxnRequest {
	r := kmsg.NewPtrEndTxnRequest()
	r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = version, id, pid, epoch, commit
	return r
}

// end answers EndTxn (v3) for id.
func (h *harness) end(id string, pid int64, epoch int16, commit bool) *kerr.Error {
	h.t.Helper()
	return h.call(id, endReq(id, 3, pid, epoch, commit)).(*kerr.Error)
}

// stored is the last record of id in its partition's store.
func (h *harness) stored(id string) (kmsg.TxnMetadataValue, bool) {
	return h.co.store(h.co.PartitionFor(id)).get(id)
}

// waitState waits until the store holds id in state.
func (h *harness) waitState(id string, state kmsg.TransactionState) kmsg.TxnMetadataValue {
	h.t.Helper()
	var v kmsg.TxnMetadataValue
	wait.For(h.t, within, func() error {
		var ok bool
		v, ok = h.stored(id)
		switch {
		case !ok:
			return fmt.Errorf("%s not stored", id)
		case v.State != state:
			return fmt.Errorf("%s is %s, want %s", id, stateName(v.State), stateName(state))
		}
		return nil
	})
	return v
}

// waitMarkers waits until at least n WriteMarkers calls were made.
func (h *harness) waitMarkers(n int) []Markers {
	h.t.Helper()
	var ms []Markers
	wait.For(h.t, within, func() error {
		if ms = h.node.markerCalls(); len(ms) < n {
			return fmt.Errorf("%d marker calls, want %d", len(ms), n)
		}
		return nil
	})
	return ms
}

// writeRecord writes id's state into partition p's store directly, as
// a previous leader's log replayed would.
func (h *harness) writeRecord(t *txn) {
	rec := metadataRecord(t.id, t)
	h.co.Store(h.co.PartitionFor(t.id)).ObserveBatch(protocol.BuildBatch([]protocol.Record{rec}, time.Now().UnixMilli()))
}

// sameStateIDs finds n transactional ids of the same state partition.
func sameStateIDs(co *Coordinator, n int) []string {
	byPart := map[int32][]string{}
	for i := 0; ; i++ {
		id := fmt.Sprintf("txn-%d", i)
		p := co.PartitionFor(id)
		byPart[p] = append(byPart[p], id)
		if len(byPart[p]) == n {
			return byPart[p]
		}
	}
}

func wantErr(t *testing.T, what string, got, want *kerr.Error) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

// states are the states of records, in order.
func states(recs []kmsg.TxnMetadataValue) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = stateName(r.State)
	}
	return out
}
