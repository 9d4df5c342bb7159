package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestClusterRollingRestart restarts the nodes of a three-node cluster one
// after another the way an operator upgrades one: SIGTERM a node (it hands
// its leaderships to caught-up followers and exits 0), keep producing
// while it is down, start it again on its data directory, and wait until
// every partition's leader counts it in sync before the next node goes.
// acks=all idempotent producers, seeded with all three nodes, run
// throughout with generous retries: a rolling restart must cost them
// retriable errors only, so every record they produce is acknowledged (a
// promise that returns an error at all is a failure), and afterwards every
// acknowledged record is there exactly once at its offset.
func TestClusterRollingRestart(t *testing.T) {
	SkipUnlessChronik(t, "a cluster of chronik-actor processes; kfake is no such cluster")
	const (
		topic       = "cluster-rolling"
		partitions  = 3
		producers   = 3
		perPhase    = 1000 // acknowledged records to wait for in each phase
		clusterSize = 3
	)
	procs := StartCluster(t, clusterSize)
	seeds := Seeds(procs)
	cl := NewClient(t, seeds)
	adm := kadm.NewClient(cl)
	createClusterTopic(t, adm, topic, partitions, clusterSize)

	acked := &ackLog{at: map[int32]map[int64]string{}}
	load := startStrictLoad(t, seeds, topic, producers, acked)
	waitAcked(t, acked, perPhase)
	for i, p := range procs {
		id := int32(i + 1) // StartCluster: node i+1 is procs[i]
		start := time.Now()
		p.Stop(30 * time.Second)
		t.Logf("node %d stopped by SIGTERM in %v with %d records acknowledged", id, time.Since(start).Round(time.Millisecond), acked.count())
		// The two others keep the topic writable while it is down.
		waitAcked(t, acked, acked.count()+perPhase)
		p.Restart()
		// Caught up: the node itself has applied everything the
		// cluster had acknowledged by the time it was back. The
		// leaders' in-sync view alone would not tell: a leader keeps
		// counting a follower in sync for a while after it last
		// matched, so it may still count the node from before its stop.
		waitApplied(t, p, topic, endOffsets(t, seeds, topic))
		waitInSync(t, cl, adm, topic, partitions, id)
		t.Logf("node %d restarted and in sync %v after its SIGTERM", id, time.Since(start).Round(time.Millisecond))
		waitAcked(t, acked, acked.count()+perPhase)
		if errs := load.errors(); len(errs) > 0 {
			t.Fatalf("after node %d's restart, %d produce promises returned an error; the first: %v", id, len(errs), errs[0])
		}
	}
	load.stop(t)
	if errs := load.errors(); len(errs) > 0 {
		t.Fatalf("%d produce promises returned an error; the first: %v", len(errs), errs[0])
	}
	verifyAcked(t, seeds, topic, partitions, acked)
}

// strictLoad is producers that must never fail: each keeps producing
// unique values (the same shape startLoad produces, so verifyAcked
// accepts them) on its own idempotent acks=all client with unlimited
// record retries, and every error a promise returns is kept. It is
// stopped by flushing, not cancelling, so no record fails at the end
// either.
type strictLoad struct {
	cancel  context.CancelFunc // stops producing new records
	clients []*kgo.Client
	loops   sync.WaitGroup
	pending sync.WaitGroup

	mu   sync.Mutex
	errs []error
}

// produceEvery paces each strictLoad producer.
const produceEvery = time.Millisecond

func startStrictLoad(t testing.TB, seeds, topic string, producers int, acked *ackLog) *strictLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &strictLoad{cancel: cancel}
	pad := strings.Repeat("p", 150)
	for g := 0; g < producers; g++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(seeds, ",")...), kgo.DefaultProduceTopic(topic),
			kgo.MaxBufferedRecords(500),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordRetries(math.MaxInt32),
			kgo.RetryTimeout(2*time.Minute),
		)
		if err != nil {
			t.Fatalf("producer client: %v", err)
		}
		t.Cleanup(cl.Close) // should the test end before stop
		l.clients = append(l.clients, cl)
		l.loops.Add(1)
		go func() {
			defer l.loops.Done()
			// Paced, so the read-back stays small whatever the
			// throughput: at most one record per producer per tick.
			pace := time.NewTicker(produceEvery)
			defer pace.Stop()
			for seq := 0; ctx.Err() == nil; seq++ {
				select {
				case <-pace.C:
				case <-ctx.Done():
					return
				}
				v := fmt.Sprintf("r1-g%d-%07d-%s", g, seq, pad)
				l.pending.Add(1)
				// Not ctx: stopping must not fail what is buffered.
				cl.Produce(context.Background(), &kgo.Record{Key: []byte(fmt.Sprintf("k%d", seq%64)), Value: []byte(v)}, func(r *kgo.Record, err error) {
					defer l.pending.Done()
					if err != nil {
						l.mu.Lock()
						l.errs = append(l.errs, fmt.Errorf("producer %d record %d: %w", g, seq, err))
						l.mu.Unlock()
						return
					}
					acked.add(r.Partition, r.Offset, v)
				})
			}
		}()
	}
	return l
}

func (l *strictLoad) errors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// stop ends producing and waits until every record produced has its
// answer.
func (l *strictLoad) stop(t testing.TB) {
	t.Helper()
	l.cancel()
	l.loops.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, cl := range l.clients {
		if err := cl.Flush(ctx); err != nil {
			t.Fatalf("producers did not flush within a minute: %v", err)
		}
	}
	l.pending.Wait()
}

// waitApplied waits until node p's own replicas of topic have applied at
// least ends (per partition), as its admin endpoint's /v1/cluster reports
// them: the high watermark of its local copy, leader or follower.
func waitApplied(t testing.TB, p *Process, topic string, ends map[int32]int64) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	wait.For(t, time.Minute, func() error {
		resp, err := hc.Get("http://" + p.AdminAddr() + "/v1/cluster")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v1/cluster of %s: %s", p.AdminAddr(), resp.Status)
		}
		var view struct {
			Topics []struct {
				Name       string
				Partitions []struct {
					Partition     int32
					HighWatermark int64 `json:"high_watermark"`
				}
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&view); err != nil {
			return fmt.Errorf("GET /v1/cluster of %s: %w", p.AdminAddr(), err)
		}
		for _, tv := range view.Topics {
			if tv.Name != topic {
				continue
			}
			have := map[int32]int64{}
			for _, pv := range tv.Partitions {
				have[pv.Partition] = pv.HighWatermark
			}
			for part, end := range ends {
				if have[part] < end {
					return fmt.Errorf("node at %s: partition %d applied to %d, the cluster had %d", p.Addr(), part, have[part], end)
				}
			}
			return nil
		}
		return fmt.Errorf("node at %s does not know topic %s yet", p.Addr(), topic)
	})
}
