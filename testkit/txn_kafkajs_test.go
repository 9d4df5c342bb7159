package testkit

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// kafkajsTxnSummary is what testkit/kafkajs/txn.js prints on stdout.
type kafkajsTxnSummary struct {
	kafkajsRun
	Txns []struct {
		Name   string `json:"name"`
		Commit bool   `json:"commit"`
		Sent   []struct {
			Partition  int32 `json:"partition"`
			BaseOffset int64 `json:"baseOffset"`
			ErrorCode  int16 `json:"errorCode"`
		} `json:"sent"`
		OffsetAfter *int64 `json:"offsetAfter"`
	} `json:"txns"`
	Consumed []string `json:"consumed"`
}

// TestTxnKafkajs drives the broker with kafkajs's transactional producer
// (testkit/kafkajs/txn.js): three transactions on a one-partition topic,
// each with sendOffsets for a group (committed, aborted, committed). The
// group's offset, read by kafkajs after each transaction and by franz-go
// at the end, is the last committed transaction's (the aborted one's
// never shows); kafkajs's read_committed group consumer and a franz-go
// read_committed consumer see exactly the committed transactions'
// records, franz-go's read_uncommitted consumer the aborted ones too.
func TestTxnKafkajs(t *testing.T) {
	tg := StartTarget(t)
	requireTransactions(t, tg.Addr())
	out, in, group, txnID := uniqueName(t, "out"), uniqueName(t, "in"), uniqueName(t, "g"), uniqueName(t, "txn")
	CreateTopic(t, tg.Addr(), out, 1, nil)
	CreateTopic(t, tg.Addr(), in, 1, nil)
	produceKeyed(t, tg.Addr(), in, "in", 20, 1) // offsets to commit exist

	var sum kafkajsTxnSummary
	runKafkajs(t, 90*time.Second, &sum, "txn.js", tg.Addr(), out, in, group, txnID)

	wantOffsets := []int64{5, 5, 8} // after commit 5, abort 9, commit 8
	var committed, all []string
	for i, tx := range sum.Txns {
		n := map[string]int{"txn1": 10, "txn2": 7, "txn3": 3}[tx.Name]
		for j := range n {
			v := fmt.Sprintf("%s-%d", tx.Name, j)
			all = append(all, v)
			if tx.Commit {
				committed = append(committed, v)
			}
		}
		for _, s := range tx.Sent {
			if s.ErrorCode != 0 {
				t.Errorf("%s: produce answered error code %d", tx.Name, s.ErrorCode)
			}
		}
		if tx.OffsetAfter == nil || *tx.OffsetAfter != wantOffsets[i] {
			t.Errorf("after %s (commit=%v) kafkajs read the group's offset %v, want %d", tx.Name, tx.Commit, tx.OffsetAfter, wantOffsets[i])
		}
	}
	if len(sum.Txns) != 3 {
		t.Fatalf("txn.js ran %d transactions, want 3", len(sum.Txns))
	}
	sameValues(t, "kafkajs's read_committed consumer", sum.Consumed, committed)
	if !slices.Equal(sum.Consumed, committed) {
		t.Errorf("kafkajs's read_committed consumer received %v, want in order %v", sum.Consumed, committed)
	}

	cl := rawClient(t, tg.Addr())
	ends := waitStable(t, cl, out, 1, 30*time.Second)
	sameValues(t, "franz-go read_committed", valuesOf(t, readTopic(t, tg.Addr(), out, ends, readCommitted)), committed)
	sameValues(t, "franz-go read_uncommitted", valuesOf(t, readTopic(t, tg.Addr(), out, ends, readUncommitted)), all)
	octx, ocancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ocancel()
	offs, err := committedOffsets(octx, kadm.NewClient(cl), group, in)
	if err != nil {
		t.Fatalf("fetch the group's offsets: %v", err)
	}
	if offs[0] != 8 || len(offs) != 1 {
		t.Errorf("group %s committed %v for %s, want partition 0 at 8 (the last committed transaction's)", group, offs, in)
	}
}
