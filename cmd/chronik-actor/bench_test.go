package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// runKfake runs bc against a fresh in-process kfake broker.
func runKfake(t *testing.T, bc benchConfig) benchResult {
	t.Helper()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := produceBench(ctx, bc, fake.ListenAddrs())
	if err != nil {
		t.Fatal(err)
	}
	r.target = "kfake"
	return r
}

// TestBenchLoopKfake is the bench's self-check: one second of the real
// produce loop must acknowledge records and measure their latency.
func TestBenchLoopKfake(t *testing.T) {
	bc := defaultBenchConfig()
	bc.duration, bc.warmup = time.Second, 200*time.Millisecond
	bc.concurrency, bc.partitions = 2, 3
	r := runKfake(t, bc)

	s := r.stats()
	if r.records == 0 || s.recordsPerSec <= 0 || s.mbPerSec <= 0 {
		t.Fatalf("nothing produced: %+v", r)
	}
	if r.errors != 0 {
		t.Errorf("%d errors, first: %v", r.errors, r.firstErr)
	}
	if r.bytes != r.records*int64(bc.recordSize) {
		t.Errorf("%d bytes for %d records of %d", r.bytes, r.records, bc.recordSize)
	}
	if s.p50 <= 0 || s.p99 < s.p50 || s.p999 < s.p99 {
		t.Errorf("percentiles p50 %v p99 %v p999 %v", s.p50, s.p99, s.p999)
	}
	if got := r.latency.TotalCount(); got != r.records {
		t.Errorf("histogram holds %d values for %d records", got, r.records)
	}

	var out bytes.Buffer
	printResults(&out, []benchResult{r, r})
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "p999 ms") || !strings.Contains(lines[3], "1.00x") {
		t.Errorf("table:\n%s", out.String())
	}
}

// TestBenchPaced checks that a fixed rate is held: pacing that drifted or
// skipped records would miss the expected count by far more than this.
func TestBenchPaced(t *testing.T) {
	bc := defaultBenchConfig()
	bc.duration, bc.warmup = time.Second, 200*time.Millisecond
	bc.concurrency, bc.partitions, bc.rate = 2, 2, 1000
	bc.acks, bc.compression = "1", "lz4"
	r := runKfake(t, bc)
	if r.records < 500 || r.records > 1500 {
		t.Errorf("%d records in %v at 1000/s", r.records, r.elapsed)
	}
	if s := r.stats(); s.p50 <= 0 {
		t.Errorf("p50 %v", s.p50)
	}
}

func TestParseBenchFlags(t *testing.T) {
	bc, err := parseBenchFlags([]string{"--brokers", "a:1, b:2", "--acks", "0", "--compression", "zstd", "--rate", "500"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(bc.brokers) != 2 || bc.brokers[1] != "b:2" || bc.acks != "0" || bc.rate != 500 || !strings.HasPrefix(bc.topic, "bench-") {
		t.Errorf("got %+v", bc)
	}
	for _, args := range [][]string{
		{"--acks", "2"}, {"--compression", "brotli"}, {"--partitions", "0"},
		{"--concurrency", "0"}, {"--duration", "0s"}, {"--rate", "-1"},
		{"--record-size", "0"}, {"--against", "kafka"}, {"extra"},
		{"--nodes", "0"}, {"--nodes", "3", "--brokers", "a:1"}, {"--replication-factor", "2"},
		{"--nodes", "3", "--replication-factor", "4"}, {"--replication-factor", "-1"},
		{"--compare", "cluster"}, {"--nodes", "3", "--compare", "cluster,kafka"},
		{"--compare", "kfake,kfake"}, {"--compare", "single", "--against", "kfake"},
		{"--compare", "single", "--brokers", "a:1"},
	} {
		if _, err := parseBenchFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestBenchTargets: without --compare a run is its target then --against,
// as before the cluster; --compare lists them, and only the cluster gets
// the replication factor.
func TestBenchTargets(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []benchTarget
	}{
		{nil, []benchTarget{{"embedded", 1, 1, false}}},
		{[]string{"--against", "kfake"}, []benchTarget{{"embedded", 1, 1, false}, {"kfake", 1, 1, false}}},
		{[]string{"--brokers", "a:1"}, []benchTarget{{"brokers", 0, 1, false}}},
		{[]string{"--brokers", "a:1", "--replication-factor", "3"}, []benchTarget{{"brokers", 0, 3, false}}},
		{[]string{"--nodes", "3", "--against", "kfake"}, []benchTarget{{"embedded", 3, 3, false}, {"kfake", 1, 1, false}}},
		{[]string{"--nodes", "3", "--replication-factor", "2"}, []benchTarget{{"embedded", 3, 2, false}}},
		{[]string{"--nodes", "3", "--compare", "cluster, single,kfake"},
			[]benchTarget{{"embedded", 3, 3, false}, {"embedded", 1, 1, false}, {"kfake", 1, 1, false}}},
		{[]string{"--compare", "single+txn,single,kfake+txn"},
			[]benchTarget{{"embedded", 1, 1, true}, {"embedded", 1, 1, false}, {"kfake", 1, 1, true}}},
		{[]string{"--compare", "kfake-blackhole,single"}, []benchTarget{{"kfake-blackhole", 1, 1, false}, {"embedded", 1, 1, false}}},
	} {
		bc, err := parseBenchFlags(tc.args, &bytes.Buffer{})
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if got := bc.targets(); !slices.Equal(got, tc.want) {
			t.Errorf("%v: targets %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

// TestBenchCluster runs the real produce loop against an embedded 3-node
// cluster with RF 3: the topic is created once the controller has a
// leader, and every record is acknowledged by a quorum.
func TestBenchCluster(t *testing.T) {
	bc := defaultBenchConfig()
	bc.duration, bc.warmup = time.Second, 500*time.Millisecond
	bc.concurrency, bc.partitions, bc.nodes = 2, 3, 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := measure(ctx, bc, bc.targets()[0], &testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if r.records == 0 || r.errors != 0 {
		t.Fatalf("%d records, %d errors (first %v)", r.records, r.errors, r.firstErr)
	}
	if !strings.Contains(r.target, "3 nodes, RF 3") {
		t.Errorf("target %q", r.target)
	}
}

// testWriter sends the embedded brokers' warnings to the test log.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
