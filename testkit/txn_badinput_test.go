package testkit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestTxnBadInput sends the transactional requests a broken client
// might and checks the Java broker's error for each: nothing is left
// open, and a real transactional producer still commits afterwards.
func TestTxnBadInput(t *testing.T) {
	tg := StartTarget(t)
	requireTransactions(t, tg.Addr())
	const topic = "txn-bad-input"
	CreateTopic(t, tg.Addr(), topic, 1, nil)
	cl := NewClient(t, tg.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// kgo sends InitProducerId to the id's coordinator, so an id no
	// coordinator can have fails its FindCoordinator: with the same code.
	initTxn := func(id string, timeout int32) *kmsg.InitProducerIDResponse {
		t.Helper()
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = &id, timeout
		resp, err := req.RequestWith(ctx, cl)
		if ke := (*kerr.Error)(nil); errors.As(err, &ke) {
			resp, err = req.ResponseKind().(*kmsg.InitProducerIDResponse), nil
			resp.ErrorCode = ke.Code
		}
		if err != nil {
			t.Fatalf("InitProducerId %.20q: %v", id, err)
		}
		return resp
	}
	code := func(what string, got int16, want *kerr.Error) {
		t.Helper()
		if w := codeOrZero(want); got != w {
			t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
		}
	}
	endTxn := func(id string, pid int64, epoch int16, commit bool) int16 {
		t.Helper()
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("EndTxn: %v", err)
		}
		return resp.ErrorCode
	}
	addPartition := func(id string, pid int64, epoch int16) int16 {
		t.Helper()
		return addPartition0(ctx, t, cl, id, pid, epoch, topic)
	}

	code("empty transactional id", initTxn("", 60000).ErrorCode, kerr.InvalidRequest)
	code("a transactional id over 32767 bytes", initTxn(strings.Repeat("x", 40000), 60000).ErrorCode, kerr.InvalidRequest)
	code("a timeout over transaction_max_timeout", initTxn("bad-timeout", 16*60*1000).ErrorCode, kerr.InvalidTransactionTimeout)
	code("a timeout of 0", initTxn("bad-timeout", 0).ErrorCode, kerr.InvalidTransactionTimeout)
	code("EndTxn for an unknown id", endTxn("never-initialized", 1, 0, true), kerr.InvalidProducerIDMapping)

	// A real id: its first producer, then a second that fences it.
	const id = "txn-bad-input-id"
	var first *kmsg.InitProducerIDResponse
	wait.For(t, 30*time.Second, func() error {
		first = initTxn(id, 60000)
		return kerr.ErrorForCode(first.ErrorCode)
	})
	pid, e0 := first.ProducerID, first.ProducerEpoch
	code("EndTxn with nothing open", endTxn(id, pid, e0, true), kerr.InvalidTxnState)
	code("EndTxn for another producer id", endTxn(id, pid+1, e0, true), kerr.InvalidProducerIDMapping)
	code("AddPartitionsToTxn at a future epoch", addPartition(id, pid, e0+1), kerr.ProducerFenced)
	code("AddPartitionsToTxn", addPartition(id, pid, e0), nil)
	second := initTxn(id, 60000)
	for second.ErrorCode == kerr.ConcurrentTransactions.Code {
		// The open transaction is being aborted to fence the first.
		second = initTxn(id, 60000)
	}
	code("InitProducerId of a second producer", second.ErrorCode, nil)
	if second.ProducerEpoch <= e0 {
		t.Fatalf("second producer's epoch %d, not above %d", second.ProducerEpoch, e0)
	}
	code("the fenced producer's EndTxn", endTxn(id, pid, e0, true), kerr.ProducerFenced)
	code("the fenced producer's AddPartitionsToTxn", addPartition(id, pid, e0), kerr.ProducerFenced)

	// TxnOffsetCommit for a group whose generation moved on: a member
	// joins (generation 1); a commit naming generation 5 is refused.
	const group = "txn-bad-input-group"
	member := NewClient(t, tg.Addr(), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	wait.For(t, 30*time.Second, func() error {
		pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		member.PollFetches(pctx)
		pcancel()
		if _, gen := member.GroupMetadata(); gen < 1 {
			return errString("no generation yet")
		}
		return nil
	})
	memberID, gen := member.GroupMetadata()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, group, second.ProducerID, second.ProducerEpoch
	req.Generation, req.MemberID = gen+4, memberID
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("TxnOffsetCommit: %v %+v", err, resp)
	}
	code("TxnOffsetCommit for a newer generation", resp.Topics[0].Partitions[0].ErrorCode, kerr.IllegalGeneration)

	// Nothing was left open: a transactional producer of the same id
	// commits, and its record is what a read_committed consumer sees.
	p := NewClient(t, tg.Addr(), kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("after the bad input")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	c := NewClient(t, tg.Addr(), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	fs := c.PollFetches(ctx)
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "after the bad input" {
		t.Fatalf("read_committed after the bad input: %d records, errors %v", len(recs), fs.Errors())
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func codeOrZero(err *kerr.Error) int16 {
	if err == nil {
		return 0
	}
	return err.Code
}
