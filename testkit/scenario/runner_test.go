package scenario

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// fakeCluster records the fault and lifecycle calls a script makes. Its
// nodes' addresses refuse connections: a step that asks them anything
// fails, which is what the failure-message checks want.
type fakeCluster struct {
	t     testing.TB
	n     int
	seed  int64
	calls []string
}

var _ testkit.Cluster = (*fakeCluster)(nil)

func (f *fakeCluster) Nodes() []int32 {
	var ids []int32
	for i := 1; i <= f.n; i++ {
		ids = append(ids, int32(i))
	}
	return ids
}
func (f *fakeCluster) Addr(id int32) string { return fmt.Sprintf("127.0.0.1:%d", id) }
func (f *fakeCluster) Seeds() string {
	var a []string
	for _, id := range f.Nodes() {
		a = append(a, f.Addr(id))
	}
	return strings.Join(a, ",")
}
func (f *fakeCluster) Client(opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(f.Addr(1))}, opts...)...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(cl.Close)
	return cl
}
func (f *fakeCluster) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}
func (f *fakeCluster) Partition(groups ...[]int32)               { f.record("partition %v", groups) }
func (f *fakeCluster) Isolate(id int32)                          { f.record("isolate %d", id) }
func (f *fakeCluster) Heal()                                     { f.record("heal") }
func (f *fakeCluster) Drop(rate float64)                         { f.record("drop %v", rate) }
func (f *fakeCluster) Delay(d time.Duration)                     { f.record("delay %v", d) }
func (f *fakeCluster) Hook(func(testkit.NetMsg) testkit.Verdict) { f.record("hook") }
func (f *fakeCluster) Kill(id int32)                             { f.record("kill %d", id) }
func (f *fakeCluster) Stop(id int32)                             { f.record("stop %d", id) }
func (f *fakeCluster) Restart(id int32)                          { f.record("restart %d", id) }
func (f *fakeCluster) Pause(id int32)                            { f.record("pause %d", id) }
func (f *fakeCluster) Resume(id int32)                           { f.record("resume %d", id) }
func (f *fakeCluster) Leader(string, int32) (int32, bool)        { return 1, true }
func (f *fakeCluster) Followers(string, int32) []int32           { return []int32{2, 3} }
func (f *fakeCluster) WaitForLeader(string, int32) int32         { return 1 }
func (f *fakeCluster) Eventually(time.Duration, func() error)    {}
func (f *fakeCluster) Seed() int64                               { return f.seed }

// runFake runs src on a fake cluster under a Recorder.
func runFake(t *testing.T, src string, opts Options) (*fakeCluster, *Recorder, bool) {
	t.Helper()
	s, err := Parse("fake.txt", src)
	if err != nil {
		t.Fatal(err)
	}
	var fc *fakeCluster
	opts.NewCluster = func(tb testing.TB, sp ClusterSpec) testkit.Cluster {
		fc = &fakeCluster{t: tb, n: sp.Nodes, seed: sp.Seed}
		fc.record("cluster %d processes=%v retain=%d seed=%d", sp.Nodes, sp.Processes, sp.RetainLogBytes, sp.Seed)
		return fc
	}
	var out bytes.Buffer
	rec := NewRecorder("fake", &out)
	passed := RunRecorded(rec, func(tb testing.TB) { Run(tb, s, opts) })
	return fc, rec, passed
}

// TestRunFaults: fault and lifecycle commands reach the cluster as
// written, names bound by `node` resolve, and the cluster gets the run's
// seed and options.
func TestRunFaults(t *testing.T) {
	fc, rec, passed := runFake(t, `
cluster 3 retain-log=64KiB
partition 1 | 2 3
partition 2 | others
isolate 2
heal
drop 0.3
delay 50ms
kill 2
restart 2
stop 3
pause 1
resume 1
`, Options{Seed: 42, HasSeed: true})
	if !passed {
		t.Fatalf("run failed: %v", rec.Errors())
	}
	want := []string{
		"cluster 3 processes=false retain=65536 seed=42",
		"partition [[1] [2 3]]", "partition [[2] [1 3]]", "isolate 2", "heal", "drop 0.3", "delay 50ms",
		"kill 2", "restart 2", "stop 3", "pause 1", "resume 1",
	}
	if !slices.Equal(fc.calls, want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(fc.calls, "\n"), strings.Join(want, "\n"))
	}
}

// TestRunSeed: the option's seed beats the environment's, which beats the
// script's `seed N` line; the run logs it.
func TestRunSeed(t *testing.T) {
	src := "seed 7\ncluster 1\n"
	if fc, _, _ := runFake(t, src, Options{}); fc.seed != 7 {
		t.Errorf("script seed: cluster got %d, want 7", fc.seed)
	}
	t.Setenv(SeedEnv, "8")
	if fc, _, _ := runFake(t, src, Options{}); fc.seed != 8 {
		t.Errorf("env seed: cluster got %d, want 8", fc.seed)
	}
	fc, _, _ := runFake(t, src, Options{Seed: 9, HasSeed: true})
	if fc.seed != 9 {
		t.Errorf("option seed: cluster got %d, want 9", fc.seed)
	}
}

// TestFailureMessage: a failed step names the file, the line, the
// command, what was expected, what happened and the seed; nothing after
// it runs.
func TestFailureMessage(t *testing.T) {
	fc, rec, passed := runFake(t, `cluster 3
# the fake's nodes answer nothing, so no leader is ever confirmed
expect leader t/0 not 1 within 100ms
kill 2
`, Options{Seed: 1234, HasSeed: true})
	if passed {
		t.Fatal("the run passed")
	}
	errs := rec.Errors()
	if len(errs) != 1 {
		t.Fatalf("%d failures, want 1: %v", len(errs), errs)
	}
	for _, want := range []string{
		"fake.txt:3: expect leader t/0 not 1 within 100ms",
		"expected: a leader of t/0 other than node(s) [1]",
		"got:      leader 1 named, but:",
		"seed:     1234",
		"--seed 1234",
	} {
		if !strings.Contains(errs[0], want) {
			t.Errorf("failure message lacks %q:\n%s", want, errs[0])
		}
	}
	if slices.Contains(fc.calls, "kill 2") {
		t.Error("a step after the failed one ran")
	}

	// A script error in a step (no such node) is reported the same way.
	_, rec, passed = runFake(t, "cluster 3\nkill 9\n", Options{Seed: 5, HasSeed: true})
	if errs := rec.Errors(); passed || len(errs) != 1 || !strings.Contains(errs[0], "fake.txt:2: kill 9: no node 9 in a cluster of 3") || !strings.Contains(errs[0], "seed:     5") {
		t.Fatalf("kill 9: passed %v, failures %v", passed, errs)
	}
}

func globScripts(t *testing.T) ([]string, error) {
	files, err := filepath.Glob(filepath.Join("..", "scenarios", "*.txt"))
	if err != nil || len(files) < 13 {
		t.Fatalf("shipped scenarios: %d (%v), want at least 13", len(files), err)
	}
	return files, err
}
