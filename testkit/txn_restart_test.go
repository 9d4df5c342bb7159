package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTxnProcessRestart SIGKILLs a single node with one transaction
// committed and one left open, and restarts it: the committed one is
// read_committed whole, the open one is aborted by its timeout after the
// restart (the coordinator reloads it from __transaction_state) and never
// seen, the last stable offset moves past it, and the id's next
// producer commits.
func TestTxnProcessRestart(t *testing.T) {
	SkipUnlessChronik(t, "restarts the broker binary")
	p := StartProcess(t, t.TempDir())
	requireTransactions(t, p.Addr())
	const topic, parts = "txn-restart", 2
	CreateTopic(t, p.Addr(), topic, parts, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	committed := newTxnProducer(t, p.Addr(), "txn-restart-committed")
	runTxn(ctx, t, committed, true, txnRecords(topic, "committed", 6, parts)...)
	open := newTxnProducer(t, p.Addr(), "txn-restart-open", kgo.TransactionTimeout(3*time.Second))
	openTxn(ctx, t, open, txnRecords(topic, "open", 6, parts)...)
	committed.Close()
	open.Close()

	p.Kill()
	p.Restart()

	// After the restart the open transaction holds the LSO until the
	// reloaded coordinator aborts it at its timeout.
	ends := waitStable(t, rawClient(t, p.Addr()), topic, parts, 60*time.Second)
	got := valuesOf(t, readTopic(t, p.Addr(), topic, ends, readCommitted))
	want := valuesFrom(txnRecords(topic, "committed", 6, parts))
	sameValues(t, "read_committed after the restart", got, want)

	next := newTxnProducer(t, p.Addr(), "txn-restart-open")
	runTxn(ctx, t, next, true, txnRecords(topic, "next", 4, parts)...)
	ends = waitStable(t, rawClient(t, p.Addr()), topic, parts, 30*time.Second)
	got = valuesOf(t, readTopic(t, p.Addr(), topic, ends, readCommitted))
	want = append(want, valuesFrom(txnRecords(topic, "next", 4, parts))...)
	sameValues(t, "read_committed after the id's next producer", got, want)
}

// valuesFrom is the values of records about to be written.
func valuesFrom(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}
