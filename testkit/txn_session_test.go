package testkit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// etlMember is one franz-go GroupTransactSession copying records from
// one topic to another, one transaction per poll.
type etlMember struct {
	name   string
	sess   *kgo.GroupTransactSession
	dialer *killableDialer

	assigned  atomic.Int32 // partitions currently assigned
	committed atomic.Int64 // transactions committed
	// killAt, when > 0: the member dies abruptly in its killAt-th
	// transaction, after its records were written and before End.
	killAt int64
	died   chan struct{} // closed once it died that way
	// openRecords is how many records its last, never-ended transaction
	// had written when it died.
	openRecords atomic.Int64

	mu      sync.Mutex
	lastErr error

	cancel context.CancelFunc
	done   chan struct{}
}

func (m *etlMember) setErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastErr = err
}

func (m *etlMember) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("%s: %d partitions, %d transactions committed, last error %v", m.name, m.assigned.Load(), m.committed.Load(), m.lastErr)
}

// startETLMember joins group as a transactional session consuming in
// (read_committed) and producing each record's key and value to out.
func startETLMember(t testing.TB, addr, group, in, out, name string, killAt int64) *etlMember {
	t.Helper()
	m := &etlMember{name: name, dialer: &killableDialer{}, killAt: killAt, died: make(chan struct{}), done: make(chan struct{})}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(addr),
		kgo.ClientID(name),
		kgo.Dialer(m.dialer.DialContext),
		kgo.TransactionalID(name),
		// A dead member's transaction is aborted by the broker once this
		// has passed; the output's last stable offset waits for it.
		kgo.TransactionTimeout(10*time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.DefaultProduceTopic(out),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, tps map[string][]int32) {
			m.assigned.Add(int32(len(tps[in])))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, tps map[string][]int32) {
			m.assigned.Add(-int32(len(tps[in])))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, tps map[string][]int32) {
			m.assigned.Add(-int32(len(tps[in])))
		}),
	)
	if err != nil {
		t.Fatalf("%s: GroupTransactSession: %v", name, err)
	}
	m.sess = sess
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.run(ctx)
	t.Cleanup(m.close)
	return m
}

func (m *etlMember) run(ctx context.Context) {
	defer close(m.done)
	for txn := int64(1); ctx.Err() == nil; {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := m.sess.PollRecords(pctx, 100)
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				m.setErr(fmt.Errorf("fetch %s/%d: %w", tp, p, err))
			}
		})
		if fs.NumRecords() == 0 {
			continue
		}
		if err := m.sess.Begin(); err != nil {
			m.setErr(fmt.Errorf("Begin: %w", err))
			return
		}
		var n int64
		fs.EachRecord(func(r *kgo.Record) {
			n++
			m.sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil && !errors.Is(err, kgo.ErrAborting) {
					m.setErr(fmt.Errorf("produce: %w", err))
				}
			})
		})
		if txn == m.killAt {
			// Mid-transaction: its records are written, its offsets
			// not yet committed, its transaction never ended.
			fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := m.sess.Client().Flush(fctx)
			cancel()
			if err != nil {
				m.setErr(fmt.Errorf("flush before dying: %w", err))
			}
			m.openRecords.Store(n)
			m.dialer.kill()
			close(m.died)
			return
		}
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		committed, err := m.sess.End(ectx, kgo.TryCommit)
		cancel()
		switch {
		case err != nil:
			m.setErr(fmt.Errorf("End: %w", err))
		case committed:
			m.committed.Add(1)
			txn++
		}
	}
}

// close stops the member: a dead one without the goodbyes it can no
// longer send, a live one gracefully (leaving the group).
func (m *etlMember) close() {
	if m.sess == nil {
		return
	}
	m.cancel()
	<-m.done
	select {
	case <-m.died:
		closeDead(m.sess.Client())
	default:
		m.sess.Close()
	}
	m.sess = nil
}

// TestTxnGroupTransactSessionMemberKilled runs franz-go's
// GroupTransactSession consume-transform-produce between two 4-partition
// topics with two members. One member dies abruptly (its connections cut,
// no LeaveGroup, no EndTxn) in its third transaction, after writing that
// transaction's records and before committing its offsets; a third
// member joins, and more input arrives. Once the group has committed the
// input's end offsets and the dead member's transaction was aborted by
// the broker (its timeout), a read_committed consumer of the output sees
// every input record exactly once, and read_uncommitted also the dead
// member's aborted copies.
func TestTxnGroupTransactSessionMemberKilled(t *testing.T) {
	tg := StartTarget(t)
	requireTransactions(t, tg.Addr())
	const parts = 4
	in, out, group := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "g")
	CreateTopic(t, tg.Addr(), in, parts, nil)
	CreateTopic(t, tg.Addr(), out, parts, nil)
	logGroupOnFailure(t, tg.Addr(), group)

	a := startETLMember(t, tg.Addr(), group, in, out, uniqueName(t, "a"), 0)
	b := startETLMember(t, tg.Addr(), group, in, out, uniqueName(t, "b"), 3)
	wait.For(t, 45*time.Second, func() error {
		if a.assigned.Load()+b.assigned.Load() != parts || a.assigned.Load() == 0 || b.assigned.Load() == 0 {
			return fmt.Errorf("waiting for both members to share the %d partitions: %v; %v", parts, a, b)
		}
		return nil
	})

	const wave = 2000
	var want []string
	produceWave := func(tag string) {
		t.Helper()
		produceKeyed(t, tg.Addr(), in, tag, wave, 40)
		for i := range wave {
			want = append(want, fmt.Sprintf("%s-%d", tag, i))
		}
	}
	produceWave("first")
	select {
	case <-b.died:
	case <-time.After(60 * time.Second):
		t.Fatalf("member b did not reach its third transaction within 60 s: %v; %v", a, b)
	}
	t.Logf("member b died mid-transaction with %d records written (after %d committed transactions); %v", b.openRecords.Load(), b.committed.Load(), a)
	if b.openRecords.Load() == 0 {
		t.Fatal("member b died with no records in its open transaction")
	}
	c := startETLMember(t, tg.Addr(), group, in, out, uniqueName(t, "c"), 0)
	produceWave("second")

	cl := rawClient(t, tg.Addr())
	inEnds := mustLatest(t, cl, in, parts, readUncommitted)
	adm := kadm.NewClient(cl)
	wait.For(t, 90*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := committedOffsets(ctx, adm, group, in)
		if err != nil {
			return err
		}
		if !equalOffsets(got, inEnds) {
			return fmt.Errorf("group %s committed %v, want the input's end offsets %v; %v; %v; %v", group, got, inEnds, a, b, c)
		}
		return nil
	})
	ends := waitStable(t, cl, out, parts, 60*time.Second)
	rc := valuesOf(t, readTopic(t, tg.Addr(), out, ends, readCommitted))
	sameValues(t, "read_committed output", rc, want)
	ru := valuesOf(t, readTopic(t, tg.Addr(), out, ends, readUncommitted))
	if extra := len(ru) - len(rc); extra < int(b.openRecords.Load()) {
		t.Errorf("read_uncommitted output holds %d records beyond the committed ones, want at least the %d of the dead member's open transaction", extra, b.openRecords.Load())
	}
	t.Logf("output: %d records read_committed (each input once), %d read_uncommitted; %v; %v", len(rc), len(ru), a, c)
}
