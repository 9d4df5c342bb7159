package testkit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// BenchmarkCatchUp measures how long a node that missed a volume of
// writes takes to be back in sync: on a cluster of three chronik-actor
// processes, node 3 is stopped (SIGTERM), the volume is produced as fast
// as one acks=all idempotent franz-go producer can (1 KiB incompressible
// values, round robin over 6 partitions at RF 3), and node 3 is started
// again. The time runs from the restart until, for every partition, the
// leader's own /v1/cluster counts node 3 in sync with a lag of 0 and node
// 3's high watermark equals the leader's. It also reports whether node 3
// caught up through raft snapshots ("installed a raft snapshot" in its
// log) or the leaders' logs. Run it with
//
//	go test -run XXX -bench 'BenchmarkCatchUp/1GB' -benchtime 1x ./testkit/
func BenchmarkCatchUp(b *testing.B) {
	for _, size := range []struct {
		name string
		mb   int
	}{{"256MB", 256}, {"1GB", 1024}} {
		b.Run(size.name, func(b *testing.B) {
			for range b.N {
				catchUp(b, int64(size.mb)<<20)
			}
		})
	}
}

func catchUp(b *testing.B, volume int64) {
	SkipUnlessChronik(b, "a cluster of chronik-actor processes")
	const (
		topic      = "catchup"
		partitions = 6
		recordSize = 1024
		lagging    = 3 // node id; procs[2]
	)
	b.StopTimer()
	logLoad(b, "at start")
	procs := StartCluster(b, 3)
	seeds := Seeds(procs)
	adm := kadm.NewClient(NewClient(b, seeds))
	createClusterTopic(b, adm, topic, partitions, 3)

	victim := procs[lagging-1]
	victim.Stop(30 * time.Second)
	// Every partition led by a survivor before the load starts.
	wait.For(b, time.Minute, func() error {
		for part := int32(0); part < partitions; part++ {
			if l := selfLeader(b, procs, topic, part); l == lagging {
				return fmt.Errorf("partition %d still led by the stopped node", part)
			}
		}
		return nil
	})

	termsBefore := leaderTerms(b, procs, topic, partitions)

	prod := NewClient(b, seeds,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(32<<10),
	)
	rng := rand.NewChaCha8([32]byte{1})
	n := volume / recordSize
	var (
		mu       sync.Mutex
		firstErr error
		errs     int
		wg       sync.WaitGroup
	)
	ctx := context.Background()
	start := time.Now()
	for i := range n {
		v := make([]byte, recordSize)
		rng.Read(v)
		wg.Add(1)
		prod.Produce(ctx, &kgo.Record{Value: v, Partition: int32(i % partitions)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if errs++; firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	produced := time.Since(start)
	if errs > 0 {
		b.Fatalf("%d of %d records failed (first: %v)", errs, n, firstErr)
	}
	mb := float64(volume) / (1 << 20)
	b.Logf("produced %d records of %d bytes (%.0f MiB) with node %d down in %v: %.1f MiB/s",
		n, recordSize, mb, lagging, produced.Round(time.Millisecond), mb/produced.Seconds())
	logLoad(b, "before the restart")
	termsLoaded := leaderTerms(b, procs, topic, partitions)

	b.StartTimer()
	restartAt := time.Now()
	victim.Restart()
	ready := time.Since(restartAt)
	// A trace of what is still missing, twice a second for the first
	// 20 s, then every 10 s; logged on one line at the end (go test shows
	// only a benchmark's first log lines).
	var lastTrace time.Time
	var trace []string
	wait.For(b, 30*time.Minute, func() error {
		err := inSyncOnLeaders(procs, topic, lagging, 0, true)
		since := time.Since(restartAt)
		if every := map[bool]time.Duration{true: 500 * time.Millisecond, false: 10 * time.Second}[since < 20*time.Second]; err != nil && time.Since(lastTrace) >= every {
			lastTrace = time.Now()
			trace = append(trace, fmt.Sprintf("+%v: %v", since.Round(10*time.Millisecond), err))
		}
		return err
	})
	took := time.Since(restartAt)
	b.StopTimer()

	// Elections during the load and the catch-up: none is expected, so
	// any is a leader that lost its followers' patience under load.
	termsAfter := leaderTerms(b, procs, topic, partitions)
	var elections, duringLoad uint64
	for part, t := range termsAfter {
		elections += t - termsBefore[part]
		duringLoad += termsLoaded[part] - termsBefore[part]
	}
	b.Logf("raft terms of the partitions before the load %v, after it %v, after the catch-up %v", termsBefore, termsLoaded, termsAfter)
	b.ReportMetric(float64(elections), "elections")
	b.ReportMetric(float64(duringLoad), "elections-during-load")

	snaps := countLogLines(victim, "installed a raft snapshot")
	var trims int
	for _, p := range procs[:lagging-1] {
		trims += countLogLines(p, "trimming past a lagging follower")
	}
	b.Logf("node %d back in sync %v after its restart (answered ApiVersions after %v): %.1f MiB/s; %d raft snapshots installed on it, %d 'trimming past a lagging follower' lines on the leaders",
		lagging, took.Round(time.Millisecond), ready.Round(time.Millisecond), mb/took.Seconds(), snaps, trims)
	b.Logf("still missing: %s", strings.Join(trace, "; "))
	b.ReportMetric(took.Seconds(), "s/catch-up")
	b.ReportMetric(mb/took.Seconds(), "MiB/s-catch-up")
	b.ReportMetric(mb/produced.Seconds(), "MiB/s-produce")
	b.ReportMetric(float64(snaps), "snapshots")
	logLoad(b, "at end")
}

// leaderTerms is every partition's raft term as its leader reports it.
func leaderTerms(b testing.TB, procs []*Process, topic string, partitions int32) map[int32]uint64 {
	b.Helper()
	terms := map[int32]uint64{}
	wait.For(b, time.Minute, func() error {
		for _, p := range procs {
			if !p.running() {
				continue
			}
			v, err := nodeView(p)
			if err != nil {
				return err
			}
			if tv := topicOf(v, topic); tv != nil {
				for _, pv := range tv.Partitions {
					if pv.Progress != nil {
						terms[pv.Partition] = pv.Progress.Term
					}
				}
			}
		}
		if int32(len(terms)) != partitions {
			return fmt.Errorf("leaders known for %d of %d partitions", len(terms), partitions)
		}
		return nil
	})
	return terms
}
