package testkit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestSIGKILLUnderLoad runs the broker binary as a child process under
// concurrent acks=all idempotent producers, SIGKILLs it once enough
// records are acknowledged, and restarts it on the same data directory,
// twice. After each restart every acknowledged record is at its offset
// with its value, every stored value is one a producer sent and none is
// stored twice, offsets run from 0 with no gap, and a new produce takes the
// next offset after the log, reusing none.
func TestSIGKILLUnderLoad(t *testing.T) {
	p := StartProcess(t, t.TempDir())
	const (
		topic      = "sigkill"
		partitions = 3
		producers  = 4
		perRound   = 3000 // acknowledged records to wait for before each kill
	)
	CreateTopic(t, p.Addr(), topic, partitions, nil)

	acked := &ackLog{at: map[int32]map[int64]string{}}
	for round := 1; round <= 2; round++ {
		load := startLoad(t, p.Addr(), topic, round, producers, acked)
		want := acked.count() + perRound
		wait.For(t, 2*time.Minute, func() error {
			if n := acked.count(); n < want {
				return fmt.Errorf("round %d: %d records acknowledged, waiting for %d", round, n, want)
			}
			return nil
		})
		p.Kill()
		load.stop(t)
		t.Logf("round %d: SIGKILL with %d records acknowledged in all", round, acked.count())

		p.Restart()
		ends := verifyAcked(t, p.Addr(), topic, partitions, acked)

		// Offsets continue after the log: a new record never reuses an
		// offset that held a record (verifyAcked below then finds it at
		// its offset, with no hole before it). It may land beyond ends:
		// records that were written but not acknowledged before the kill
		// can surface while the restarted node replays its raft log.
		cl := NewClient(t, p.Addr(), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for part := int32(0); part < partitions; part++ {
			v := fmt.Sprintf("after-restart-%d-p%d", round, part)
			r, err := cl.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(v)}).First()
			if err != nil {
				cancel()
				t.Fatalf("round %d: produce after restart: %v", round, err)
			}
			if r.Offset < ends[part] {
				cancel()
				t.Fatalf("round %d: partition %d: produce after restart reused offset %d, the log already ended at %d", round, part, r.Offset, ends[part])
			}
			if r.Offset > ends[part] {
				t.Logf("round %d: partition %d: %d more records surfaced after the end offset was read", round, part, r.Offset-ends[part])
			}
			acked.add(part, r.Offset, v)
		}
		cancel()
		cl.Close()
		verifyAcked(t, p.Addr(), topic, partitions, acked)
	}
}

// ackLog is every acknowledged (partition, offset, value).
type ackLog struct {
	mu sync.Mutex
	at map[int32]map[int64]string
	n  atomic.Int64
}

func (a *ackLog) add(p int32, o int64, v string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.at[p] == nil {
		a.at[p] = map[int64]string{}
	}
	a.at[p][o] = v
	a.n.Add(1)
}

func (a *ackLog) count() int64 { return a.n.Load() }

type load struct {
	cancel  context.CancelFunc
	clients []*kgo.Client
	loops   sync.WaitGroup // the producing goroutines
	pending sync.WaitGroup // produced records whose promise has not run
}

// startLoad (addr: one host:port, or several joined by commas) runs producers that each keep producing unique values on their
// own client (idempotent, acks=all: kgo's defaults) until stopped,
// recording every acknowledgement.
func startLoad(t testing.TB, addr, topic string, round, producers int, acked *ackLog) *load {
	return startPacedLoad(t, addr, topic, round, producers, 0, acked)
}

// startPacedLoad is startLoad with each producer producing at most
// perSec records a second (no limit when 0).
func startPacedLoad(t testing.TB, addr, topic string, round, producers, perSec int, acked *ackLog) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	pad := strings.Repeat("p", 150)
	for g := 0; g < producers; g++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.DefaultProduceTopic(topic),
			// A small buffer keeps the load modest and the stop quick.
			kgo.MaxBufferedRecords(500))
		if err != nil {
			t.Fatalf("producer client: %v", err)
		}
		l.clients = append(l.clients, cl)
		l.loops.Add(1)
		go func() {
			defer l.loops.Done()
			const tick = 10 * time.Millisecond
			var pace <-chan time.Time
			if perSec > 0 {
				tk := time.NewTicker(tick)
				defer tk.Stop()
				pace = tk.C
			}
			burst := max(1, perSec/int(time.Second/tick))
			for seq := 0; ctx.Err() == nil; seq++ {
				if pace != nil && seq%burst == 0 {
					select {
					case <-pace:
					case <-ctx.Done():
						return
					}
				}
				v := fmt.Sprintf("r%d-g%d-%07d-%s", round, g, seq, pad)
				l.pending.Add(1)
				cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", seq%64)), Value: []byte(v)}, func(r *kgo.Record, err error) {
					defer l.pending.Done()
					if err == nil {
						acked.add(r.Partition, r.Offset, v)
					}
				})
			}
		}()
	}
	return l
}

// stop ends the load once the broker is dead: records still buffered or in
// flight fail, so none is acknowledged by the restarted broker behind the
// test's back.
func (l *load) stop(t testing.TB) {
	t.Helper()
	l.cancel()
	done := make(chan struct{})
	go func() {
		l.loops.Wait()
		for _, cl := range l.clients {
			cl.Close()
		}
		l.pending.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("producers did not stop within a minute of the kill")
	}
}

// verifyAcked reads the whole topic and checks it against the ackLog;
// it returns the end offset of each partition.
func verifyAcked(t testing.TB, addr, topic string, partitions int32, acked *ackLog) map[int32]int64 {
	t.Helper()
	// Every acknowledged record must become readable within a deadline of
	// the restart; the node may still be replaying its log when it first
	// answers.
	var ends map[int32]int64
	wait.For(t, time.Minute, func() error {
		ends = endOffsets(t, addr, topic)
		acked.mu.Lock()
		defer acked.mu.Unlock()
		for p, offsets := range acked.at {
			for o := range offsets {
				if o >= ends[p] {
					return fmt.Errorf("partition %d ends at %d, an acknowledged record is at %d", p, ends[p], o)
				}
			}
		}
		return nil
	})
	got := consumeAll(t, addr, topic, ends)
	seen := map[string][2]int64{}
	for p := int32(0); p < partitions; p++ {
		for i, r := range got[p] {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: record #%d at offset %d, want offsets contiguous from 0", p, i, r.Offset)
			}
			if v := string(r.Value); !strings.HasPrefix(v, "r") && !strings.HasPrefix(v, "after-restart-") {
				t.Fatalf("partition %d offset %d holds %.24q, which no producer sent", p, r.Offset, v)
			}
			if prev, dup := seen[string(r.Value)]; dup {
				t.Fatalf("value %.24q stored twice: partition %d offset %d and partition %d offset %d", r.Value, prev[0], prev[1], p, r.Offset)
			}
			seen[string(r.Value)] = [2]int64{int64(p), r.Offset}
		}
	}
	acked.mu.Lock()
	defer acked.mu.Unlock()
	for p, offsets := range acked.at {
		for o, v := range offsets {
			if o >= int64(len(got[p])) {
				t.Fatalf("acknowledged record %.24q at partition %d offset %d lost: the log ends at %d", v, p, o, len(got[p]))
			}
			if g := string(got[p][o].Value); g != v {
				t.Fatalf("partition %d offset %d holds %.24q, acknowledged %.24q", p, o, g, v)
			}
		}
	}
	t.Logf("verified %d acknowledged records among %d stored", acked.n.Load(), len(seen))
	return ends
}
