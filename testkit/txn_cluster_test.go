package testkit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// txnOutcome is what a transaction's producer learned of its end.
type txnOutcome int

const (
	txnCommitted txnOutcome = iota // EndTransaction(commit) succeeded
	txnAborted                     // aborted (by the producer, or abandoned to the broker's timeout)
	txnUnknown                     // the commit failed across the kill: either outcome, but whole
)

// txnLedger is every transaction the cluster check ran: name -> (records,
// outcome).
type txnLedger struct {
	n       map[string]int
	outcome map[string]txnOutcome
}

// endTxnHook signals once when, armed, the client writes an EndTxn
// request to node.
type endTxnHook struct {
	armed atomic.Bool
	node  atomic.Int32
	once  sync.Once
	fired chan struct{}
}

func (h *endTxnHook) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil && key == kmsg.EndTxn.Int16() && h.armed.Load() && meta.NodeID == h.node.Load() {
		h.once.Do(func() { close(h.fired) })
	}
}

// TestTxnClusterCoordinatorSIGKILL runs three chronik-actor processes and
// an RF 3 topic of three partitions, and SIGKILLs the node coordinating a
// transactional id (FindCoordinator key type 1 names it) in three ways,
// one after the other on the same cluster, restarting the killed node
// after each:
//
//   - mid-transaction: after the transaction's records were written,
//     before EndTxn; the producer then commits through the new
//     coordinator, which rebuilt the transaction from its log;
//   - at EndTxn: the moment the producer wrote its EndTxn(commit) to the
//     coordinator; the outcome may be either, the transaction whole;
//   - abandoned: the producer dies with a transaction open (5 s timeout)
//     and the coordinator is killed; the new coordinator must abort it.
//
// Around each kill the producer keeps running transactions of 9 records
// (3 per partition) whose values say phase, transaction number, record
// number and count, until 3 commit after the kill. At the end, with no
// transaction open anywhere, a read_committed consumer must see every
// committed transaction whole, no aborted one, and of any transaction
// whose commit failed across the kill either all records or none; none
// twice.
//
// With CHRONIK_TEST_TARGET=kfake the same scenario runs on a 3-broker
// kfake cluster whose "kills" do nothing: that checks the check's own
// bookkeeping, not failover.
func TestTxnClusterCoordinatorSIGKILL(t *testing.T) {
	const parts = 3
	if TargetKind() == KindKfake {
		kc, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			t.Fatalf("start kfake: %v", err)
		}
		defer kc.Close()
		seeds := strings.Join(kc.ListenAddrs(), ",")
		CreateTopic(t, seeds, "txn-coordinator-kill", parts, nil)
		noop := func(id int32) { t.Logf("kfake: node %d not killed nor restarted (kfake cannot)", id) }
		txnKillScenario(t, seeds, "txn-coordinator-kill", parts, noop, noop)
		return
	}
	c := NewProcessCluster(t, 3)
	requireTransactions(t, c.Seeds())
	topic := "txn-coordinator-kill"
	CreateClusterTopic(t, c, topic, parts, 3)
	txnKillScenario(t, c.Seeds(), topic, parts, c.Kill, c.Restart)
}

// txnKillScenario is TestTxnClusterCoordinatorSIGKILL's body on a cluster
// seeded by seeds whose node id kill kills and restart restarts; topic
// has parts partitions.
func txnKillScenario(t *testing.T, seeds, topic string, parts int32, kill, restart func(int32)) {
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(kmsg.Fetch.Int16(), 12)
	raw := clusterClient(t, seeds, kgo.MaxVersions(versions))
	defer raw.Close()
	ledger := &txnLedger{n: map[string]int{}, outcome: map[string]txnOutcome{}}

	record := func(name string, n int, o txnOutcome) {
		ledger.n[name], ledger.outcome[name] = n, o
	}
	values := func(name string, n int) []*kgo.Record {
		rs := make([]*kgo.Record, n)
		for i := range rs {
			rs[i] = &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: fmt.Appendf(nil, "%s/%d/%d", name, i, n)}
		}
		return rs
	}

	for _, phase := range []string{"mid-transaction", "at-endtxn"} {
		t.Run(phase, func(t *testing.T) {
			txnID := "txn-kill-" + phase
			hook := &endTxnHook{fired: make(chan struct{})}
			newProducer := func() *kgo.Client {
				return clusterClient(t, seeds,
					kgo.TransactionalID(txnID),
					kgo.TransactionTimeout(20*time.Second),
					kgo.RecordPartitioner(kgo.ManualPartitioner()),
					kgo.WithHooks(hook),
				)
			}
			p := newProducer()
			defer func() { p.Close() }()
			const killTxn, afterKill = 3, 3
			var killed int32
			var killedAt time.Time // zero until the kill
			committedAfter := 0
			for k := 0; committedAfter < afterKill; k++ {
				if k > 40 {
					t.Fatalf("%d transactions and only %d committed since the kill of node %d", k, committedAfter, killed)
				}
				name := fmt.Sprintf("%s/%d", phase, k)
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				ok := func() bool {
					defer cancel()
					if err := p.BeginTransaction(); err != nil {
						t.Fatalf("%s: BeginTransaction: %v", name, err)
					}
					recs := values(name, 3*int(parts))
					if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
						t.Logf("%s: produce failed (%v); aborting", name, err)
						return false
					}
					if k == killTxn && phase == "mid-transaction" {
						killed = txnCoordinator(t, raw, txnID)
						kill(killed)
						killedAt = time.Now()
						t.Logf("%s: SIGKILLed node %d, coordinator of %s, with the transaction's records written", name, killed, txnID)
					}
					var err error
					if k == killTxn && phase == "at-endtxn" {
						killed = txnCoordinator(t, raw, txnID)
						hook.node.Store(killed)
						hook.armed.Store(true)
						done := make(chan error, 1)
						go func() { done <- p.EndTransaction(ctx, kgo.TryCommit) }()
						select {
						case <-hook.fired:
						case err := <-done:
							t.Fatalf("%s: EndTransaction returned (%v) without writing EndTxn to node %d, the coordinator FindCoordinator named", name, err, killed)
						case <-ctx.Done():
							t.Fatalf("%s: no EndTxn written to node %d", name, killed)
						}
						kill(killed)
						killedAt = time.Now()
						t.Logf("%s: SIGKILLed node %d, coordinator of %s, as EndTxn(commit) was written to it", name, killed, txnID)
						err = <-done
					} else {
						err = p.EndTransaction(ctx, kgo.TryCommit)
					}
					if err != nil {
						t.Logf("%s: commit failed: %v", name, err)
						record(name, len(recs), txnUnknown)
						return false
					}
					record(name, len(recs), txnCommitted)
					return true
				}()
				if ok {
					if !killedAt.IsZero() {
						if committedAfter == 0 {
							t.Logf("%s: first transaction committed %v after the kill", name, time.Since(killedAt).Round(time.Millisecond))
						}
						committedAfter++
					}
					continue
				}
				if _, known := ledger.n[name]; !known {
					record(name, 3*int(parts), txnUnknown) // some records may have been written
				}
				actx, acancel := context.WithTimeout(context.Background(), 60*time.Second)
				err := p.EndTransaction(actx, kgo.TryAbort)
				acancel()
				if err != nil {
					// Fenced or fatal: a new producer with the same id
					// (InitProducerId bumps the epoch and aborts whatever
					// this one left open).
					t.Logf("%s: abort failed (%v); starting a new producer", name, err)
					p.Close()
					p = newProducer()
				}
			}
			restart(killed)
		})
	}

	t.Run("abandoned", func(t *testing.T) {
		txnID := "txn-kill-abandoned"
		dialer := &killableDialer{}
		p := clusterClient(t, seeds,
			kgo.TransactionalID(txnID),
			kgo.TransactionTimeout(5*time.Second),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.Dialer(dialer.DialContext),
		)
		defer closeDead(p)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		name := "abandoned/0"
		runTxn(ctx, t, p, true, values(name, 3*int(parts))...)
		record(name, 3*int(parts), txnCommitted)
		name = "abandoned/1"
		if err := p.BeginTransaction(); err != nil {
			t.Fatalf("BeginTransaction: %v", err)
		}
		if err := p.ProduceSync(ctx, values(name, 3*int(parts))...).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", name, err)
		}
		record(name, 3*int(parts), txnAborted)
		dialer.kill()
		killed := txnCoordinator(t, raw, txnID)
		kill(killed)
		start := time.Now()
		t.Logf("%s: producer dead with its transaction open; SIGKILLed node %d, coordinator of %s", name, killed, txnID)
		waitStable(t, raw, topic, parts, 90*time.Second)
		t.Logf("%s: no transaction open %v after the kill (timeout 5 s)", name, time.Since(start).Round(time.Millisecond))
		restart(killed)
	})

	ends := waitStable(t, raw, topic, parts, 90*time.Second)
	got := readTopic(t, seeds, topic, ends, readCommitted)
	seen := map[string]map[int]int{} // txn -> record number -> times
	for _, recs := range got {
		for _, r := range recs {
			f := strings.Split(string(r.Value), "/")
			if len(f) != 4 {
				t.Fatalf("unexpected value %q", r.Value)
			}
			name := f[0] + "/" + f[1]
			i, _ := strconv.Atoi(f[2])
			n, _ := strconv.Atoi(f[3])
			if seen[name] == nil {
				seen[name] = map[int]int{}
			}
			seen[name][i]++
			if want, ok := ledger.n[name]; !ok || n != want {
				t.Errorf("read_committed: %q: no such transaction of %d records (%v)", r.Value, n, ok)
			}
		}
	}
	var committed, unknownIn, unknownOut int
	for name, n := range ledger.n {
		s := seen[name]
		for i, times := range s {
			if times != 1 {
				t.Errorf("read_committed: record %d of %s seen %d times", i, name, times)
			}
		}
		switch o := ledger.outcome[name]; {
		case len(s) != 0 && len(s) != n:
			t.Errorf("read_committed: %d of the %d records of %s (outcome %d): part of a transaction", len(s), n, name, o)
		case o == txnCommitted && len(s) == 0:
			t.Errorf("read_committed: the committed transaction %s is missing", name)
		case o == txnAborted && len(s) != 0:
			t.Errorf("read_committed: the aborted transaction %s is visible", name)
		case o == txnCommitted:
			committed++
		case o == txnUnknown && len(s) != 0:
			unknownIn++
		case o == txnUnknown:
			unknownOut++
		}
	}
	t.Logf("read_committed: %d committed transactions whole; of those whose commit failed across a kill, %d visible whole, %d invisible; end offsets %v",
		committed, unknownIn, unknownOut, ends)
}

// clusterClient is a client of the cluster seeded by seeds as
// Cluster.Client makes them, which the caller
// closes (once).
func clusterClient(t testing.TB, seeds string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(ClientOpts(strings.Split(seeds, ",")...), opts...)...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return cl
}
