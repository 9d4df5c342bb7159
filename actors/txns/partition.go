package txns

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// partition is the actor of one __transaction_state partition: the only
// owner of its transactions while this node leads it. Its state is
// loaded from the store when it takes over (a new leader term), and
// every change is a record written through the replica before the state
// takes it. Work that continues later (a write's result, a producer id,
// markers written) checks gen: a continuation from before the last
// take-over or hand-off is dropped, its call having been answered
// NOT_COORDINATOR then.
type partition struct {
	co    *Coordinator
	p     int32
	store *txnStore
	ctx   actor.Context

	loaded bool
	term   int32
	gen    uint64
	txns   map[string]*txn

	// held are the calls waiting for a write or a producer id; they are
	// answered NOT_COORDINATOR when the partition is handed off or the
	// actor stops, so that no connection waits forever.
	held    map[uint64]*Call
	heldSeq uint64
	// parked are calls for a transaction with a change in flight (most
	// often its end: markers, then the Complete record). Kafka answers
	// them CONCURRENT_TRANSACTIONS at once and the client backs off (20
	// ms and more in franz-go); waiting here instead answers them as soon
	// as the change is done, which is the next transaction's start.
	parked map[string][]*Call
}

// parkLimit is how long a call waits for its transaction's change before
// it is answered CONCURRENT_TRANSACTIONS after all (markers to a
// partition without a leader can take long).
const parkLimit = 5 * time.Second

// continuation is work another goroutine hands back to the actor.
type continuation struct {
	gen uint64
	run func()
}

func newPartitionProps(co *Coordinator, p int32, s *txnStore) *actor.Props {
	a := &partition{co: co, p: p, store: s, held: map[uint64]*Call{}, parked: map[string][]*Call{}}
	return actor.PropsFromProducer(func() actor.Actor { return a },
		// Senders are connections (bounded by their in-flight limit),
		// the replica answering writes and the sweep: a bounded mailbox
		// would block them when full.
		actor.WithMailbox(actor.Unbounded()),
		// Stop, never restart over half-changed state: the next call
		// respawns it, and it reloads from the log.
		actor.WithGuardian(stopOnPanic))
}

var stopOnPanic = actor.NewOneForOneStrategy(0, 10*time.Second, func(any) actor.Directive {
	return actor.StopDirective
})

func (a *partition) Receive(ctx actor.Context) {
	a.ctx = ctx
	switch m := ctx.Message().(type) {
	case *Call:
		if err := a.ensure(); err != nil {
			m.reply(CallError(m.op, err))
			return
		}
		a.handle(m)
	case parkExpired:
		a.expirePark(m.id, m.call)
	case sweep:
		if a.ensure() == nil {
			a.expire(m.now)
		}
	case *raftactor.Result:
		m.Run()
	case continuation:
		if m.gen == a.gen {
			m.run()
		}
	case *actor.Stopping:
		// After a panic too: the next call must spawn a new actor, not
		// go to this one's dead letters and never be answered.
		a.co.forget(a.p, ctx.Self())
		a.unload()
		a.releaseAll(kerr.NotCoordinator)
		return
	}
	a.unpark()
}

// callTxnID is the transactional id a call is about.
func callTxnID(op any) string {
	switch op := op.(type) {
	case *kmsg.InitProducerIDRequest:
		return *op.TransactionalID
	case *AddOp:
		return op.TransactionalID
	case *kmsg.EndTxnRequest:
		return op.TransactionalID
	}
	return ""
}

// verifyOnly reports whether op is a check of t's partitions that can be
// answered while a change is written: from the last record, as Kafka's
// verification ignores a pending state; an ending transaction's check
// waits for the end (its batch is late: refused once it completes).
func verifyOnly(op any, t *txn) bool {
	add, ok := op.(*AddOp)
	return ok && add.VerifyOnly && t.state != statePrepareCommit && t.state != statePrepareAbort
}

func (a *partition) handle(c *Call) {
	id := callTxnID(c.op)
	if t := a.txns[id]; t != nil && t.busy && !verifyOnly(c.op, t) {
		a.park(id, c)
		return
	}
	switch op := c.op.(type) {
	case *kmsg.InitProducerIDRequest:
		a.initProducerID(c, op)
	case *AddOp:
		a.addPartitions(c, op)
	case *kmsg.EndTxnRequest:
		a.endTxn(c, op)
	default:
		c.reply(CallError(c.op, kerr.InvalidRequest))
	}
}

// ensure checks that this node leads the partition with its log applied,
// and (re)loads the transactions when it took over in a new term.
func (a *partition) ensure() *kerr.Error {
	r := a.co.node.StateReplica(a.p)
	if r == nil || !r.LeaderReady() {
		a.unload()
		return kerr.NotCoordinator
	}
	if !a.loaded || r.Term() != a.term {
		a.unload()
		a.load(r.Term())
	}
	return nil
}

// load takes the transactions over from the log. A transaction between
// its Prepare and Complete records has its markers written again (the
// previous coordinator may have written some or none): ending it is
// decided, only the markers may be missing. Open transactions stay open
// until their producer ends them or they time out.
func (a *partition) load(term int32) {
	a.loaded, a.term = true, term
	a.gen++
	a.txns = map[string]*txn{}
	for id, v := range a.store.all() {
		t := txnFromRecord(id, v)
		a.txns[id] = t
		if t.state == statePrepareCommit || t.state == statePrepareAbort {
			t.busy = true
			a.sendMarkers(t, t.state == statePrepareCommit, t.partitionList())
		}
	}
}

// unload lets go of the transactions: another node leads the partition
// now, or this one in a new term. Calls waiting are answered.
func (a *partition) unload() {
	if !a.loaded {
		return
	}
	a.loaded = false
	a.gen++
	a.txns = nil
	a.releaseAll(kerr.NotCoordinator)
}

// hold keeps c until its answer is ready; the returned func answers it.
func (a *partition) hold(c *Call) func(any) {
	a.heldSeq++
	id := a.heldSeq
	a.held[id] = c
	return func(v any) {
		if c, ok := a.held[id]; ok {
			delete(a.held, id)
			c.reply(v)
		}
	}
}

func (a *partition) releaseAll(err *kerr.Error) {
	for id, c := range a.held {
		delete(a.held, id)
		c.reply(CallError(c.op, err))
	}
	for id, cs := range a.parked {
		delete(a.parked, id)
		for _, c := range cs {
			c.reply(CallError(c.op, err))
		}
	}
}

// parkExpired ends a call's wait for its transaction.
type parkExpired struct {
	id   string
	call *Call
}

func (a *partition) park(id string, c *Call) {
	a.parked[id] = append(a.parked[id], c)
	root, self := a.ctx.ActorSystem().Root, a.ctx.Self()
	time.AfterFunc(parkLimit, func() { root.Send(self, parkExpired{id: id, call: c}) })
}

// expirePark answers CONCURRENT_TRANSACTIONS to c if it still waits.
func (a *partition) expirePark(id string, c *Call) {
	cs := a.parked[id]
	for i, pc := range cs {
		if pc == c {
			a.parked[id] = append(cs[:i:i], cs[i+1:]...)
			if len(a.parked[id]) == 0 {
				delete(a.parked, id)
			}
			c.reply(CallError(c.op, kerr.ConcurrentTransactions))
			return
		}
	}
}

// unpark handles, in arrival order, the calls of every transaction whose
// change is done; it runs after each message, so a call goes on within
// the message that finished the change.
func (a *partition) unpark() {
	for id, cs := range a.parked {
		if t := a.txns[id]; t != nil && t.busy {
			continue
		}
		delete(a.parked, id)
		for i, c := range cs {
			if t := a.txns[id]; t != nil && t.busy {
				// The first call started a change of its own: the rest
				// wait for that one.
				a.parked[id] = append(a.parked[id], cs[i:]...)
				break
			}
			if a.ensure() != nil {
				c.reply(CallError(c.op, kerr.NotCoordinator))
				continue
			}
			a.handle(c)
		}
	}
}

// later runs fn on the actor, unless the partition changed hands since.
func (a *partition) later() func(fn func()) {
	root, self, gen := a.ctx.ActorSystem().Root, a.ctx.Self(), a.gen
	return func(fn func()) { root.Send(self, continuation{gen: gen, run: fn}) }
}

// after runs fn on the actor once d has passed, unless the partition
// changed hands since.
func (a *partition) after(d time.Duration, fn func()) {
	post := a.later()
	time.AfterFunc(d, func() { post(fn) })
}

// write makes next the durable state of its transaction: then runs on
// the actor once the record is applied (nil) or failed.
func (a *partition) write(next *txn, then func(*kerr.Error)) {
	r := a.co.node.StateReplica(a.p)
	if r == nil {
		then(kerr.NotCoordinator)
		return
	}
	rec := metadataRecord(next.id, next)
	gen := a.gen
	a.ctx.Send(r.PID(), &raftactor.Propose{
		Data:    raftactor.EncodeProduce(protocol.BuildBatch([]protocol.Record{rec}, time.Now().UnixMilli())),
		ReplyTo: a.ctx.Self(),
		Then: func(v any, err error) {
			if gen != a.gen {
				return // handed off: the call was answered then
			}
			then(appendError(v, err))
		},
	})
}

// takeProducerID gets a new producer id off the actor; then runs on it.
func (a *partition) takeProducerID(then func(int64, *kerr.Error)) {
	post := a.later()
	go func() {
		id, err := a.co.node.NewProducerID()
		post(func() {
			var ke *kerr.Error
			switch {
			case errors.As(err, &ke):
			case err != nil:
				ke = kerr.CoordinatorNotAvailable // no controller reachable: retriable
			}
			then(id, ke)
		})
	}()
}

// appendError maps the outcome of a state record's write to what Kafka's
// coordinator answers for a failed append.
func appendError(v any, err error) *kerr.Error {
	if err != nil {
		return kerr.NotCoordinator // not leading, or stopped: ask the new leader
	}
	res, _ := v.(*raftactor.ProduceResult)
	if res == nil || res.Err == nil {
		return nil
	}
	switch res.Err {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator
	}
	return kerr.UnknownServerError
}

func nowMs() int64 { return time.Now().UnixMilli() }
