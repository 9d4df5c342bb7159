package clustertest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// BenchmarkNewCluster3 times a 3-node in-process cluster from nothing to
// serving: NewCluster (formed: a controller, every node live), a topic
// with replication factor 3 created, its leader accepting writes, and
// one record produced with acks=all. ms/start is the figure; each
// iteration's cleanup (the nodes killed, the data removed) is outside
// the timing.
//
//	go test -run XXX -bench BenchmarkNewCluster3 -benchtime 10x ./testkit/clustertest/
func BenchmarkNewCluster3(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		s := &scope{TB: b}
		start := time.Now()
		c := testkit.NewCluster(s, 3)
		testkit.CreateClusterTopic(s, c, "bench", 1, 3)
		cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()))
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "bench", Value: []byte("v")}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		s.done()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/start")
}

// scope is a testing.TB whose cleanups and temporary directories end
// when done is called rather than with the benchmark, so that each
// iteration stops its cluster before the next starts.
type scope struct {
	testing.TB
	cleanups []func()
}

func (s *scope) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

func (s *scope) TempDir() string {
	s.TB.Helper()
	dir, err := os.MkdirTemp("", "clustertest-")
	if err != nil {
		s.TB.Fatal(err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (s *scope) Logf(string, ...any) {} // one seed line per iteration is noise here

func (s *scope) done() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}
