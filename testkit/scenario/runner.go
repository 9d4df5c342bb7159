package scenario

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// SeedEnv names the environment variable that replays a seed under go
// test: CHRONIK_SCENARIO_SEED=N go test ./testkit/scenarios.
const SeedEnv = "CHRONIK_SCENARIO_SEED"

// Options tune a run.
type Options struct {
	// Seed, when HasSeed, is the run's seed, over the environment's
	// (SeedEnv) and the script's `seed N` line.
	Seed    int64
	HasSeed bool
	// NewCluster starts the script's cluster; nil is testkit.NewCluster,
	// or testkit.NewProcessCluster for `cluster N processes`.
	NewCluster Factory
}

// Factory starts the cluster a script's `cluster` line asks for, with t
// the runner's (whose failures name the step).
type Factory func(t testing.TB, spec ClusterSpec) testkit.Cluster

// ClusterSpec is a `cluster` line.
type ClusterSpec struct {
	Nodes     int
	Processes bool  // real processes rather than in-process nodes
	Seed      int64 // the run's seed, for testkit.ClusterSeed
	// RetainLogBytes, when positive, bounds the raft log a leader keeps
	// for a lagging follower (cluster.Config.RetainLogBytes).
	RetainLogBytes int
	// Tick, when positive, is the nodes' raft clock
	// (cluster.Config.TickInterval; the in-process default is 20 ms).
	Tick time.Duration
}

// runner is one run of one script.
type runner struct {
	t       testing.TB
	tb      *stepTB // t, with failures prefixed by the current step
	script  *Script
	opts    Options
	seed    int64
	rng     *mrand.Rand
	cur     *Step
	c       testkit.Cluster
	raw     *kgo.Client // seeded with every node in order: raw requests to one node
	nodes   map[string]int32
	prods   map[string]*producer
	members map[string]*member // by group + "/" + member
	loads   map[string]*load
}

// Run runs script on t: each step in turn, the first failed one ending
// the run with t.Fatal (under go test, the subtest; with a Recorder, the
// script). Everything it starts is stopped through t.Cleanup.
func Run(t testing.TB, script *Script, opts Options) {
	t.Helper()
	r := &runner{t: t, script: script, opts: opts,
		nodes: map[string]int32{}, prods: map[string]*producer{}, members: map[string]*member{}, loads: map[string]*load{}}
	r.tb = &stepTB{TB: t, r: r}
	r.seed = r.pickSeed()
	r.rng = mrand.New(mrand.NewPCG(uint64(r.seed), 0x5ce7a710))
	r.logf("scenario %s: seed %d (replay: --seed %d, or %s=%d under go test)", script.Name, r.seed, r.seed, SeedEnv, r.seed)
	for _, st := range script.Steps {
		r.cur = st
		t.Logf("%s:%d: %s", script.Name, st.Line, st.Text)
		commands[st.key()].run(r, st)
	}
	r.cur = nil
}

// pickSeed: the option, else the environment, else the script's line,
// else a fresh random one.
func (r *runner) pickSeed() int64 {
	if r.opts.HasSeed {
		return r.opts.Seed
	}
	if v := os.Getenv(SeedEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			r.t.Fatalf("%s=%q: %v", SeedEnv, v, err)
		}
		return n
	}
	for _, st := range r.script.Steps {
		if st.Cmd == "seed" {
			n, err := strconv.ParseInt(st.Args[0], 10, 64)
			if err != nil {
				r.t.Fatalf("%s:%d: %s: %v", r.script.Path, st.Line, st.Text, err)
			}
			return n
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:]) >> 1)
}

// logf goes to the run's log: under go test shown with -v or when the
// script fails, from the command line printed as it happens.
func (r *runner) logf(format string, args ...any) { r.t.Logf(format, args...) }

// cleanup stops what the steps started on the cluster (registered once
// the cluster is up, so it runs before the cluster's own cleanup stops
// the nodes): background producers, group members, the raw client.
func (r *runner) cleanup() {
	for _, l := range r.loads {
		l.stop()
	}
	for _, m := range r.members {
		m.close()
	}
	if r.raw != nil {
		r.raw.Close()
	}
}

// where is the current step's place and text, the start of every
// failure message.
func (r *runner) where() string {
	if r.cur == nil {
		return r.script.Path + ": "
	}
	return fmt.Sprintf("%s:%d: %s: ", r.script.Path, r.cur.Line, r.cur.Text)
}

func (r *runner) seedNote() string {
	return fmt.Sprintf("\n\tseed:     %d (replay: chronik-actor scenario run %s --seed %d, or %s=%d go test ./testkit/scenarios)",
		r.seed, r.script.Path, r.seed, SeedEnv, r.seed)
}

// fail ends the run: the step expected want and got got.
func (r *runner) fail(want, got string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s\n\texpected: %s\n\tgot:      %s%s", strings.TrimSuffix(r.where(), ": "), want, fmt.Sprintf(got, args...), r.seedNote())
}

// bad ends the run on a step the runner cannot carry out as written.
func (r *runner) bad(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s%s%s", r.where(), fmt.Sprintf(format, args...), r.seedNote())
}

// cluster is the script's cluster; a step before the `cluster` line is a
// script error.
func (r *runner) cluster() testkit.Cluster {
	if r.c == nil {
		r.bad("no cluster yet: start one with `cluster N` first")
	}
	return r.c
}

// eventually retries f until it returns nil or d passes, then fails the
// step with want and f's last error.
func (r *runner) eventually(d time.Duration, want string, f func() error) {
	r.t.Helper()
	if err := wait.Until(context.Background(), d, f); err != nil {
		r.fail(want, "%v (still, after %v)", err, d)
	}
}

// within is the step's within= duration, or def.
func (r *runner) within(st *Step, def time.Duration) time.Duration {
	v, ok := st.KV["within"]
	if !ok {
		return def
	}
	return r.duration(v)
}

func (r *runner) duration(v string) time.Duration {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.bad("bad duration %q", v)
	}
	return d
}

func (r *runner) int(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.bad("bad number %q", v)
	}
	return n
}

// size parses 65536, 64KiB, 1MiB.
func (r *runner) size(v string) int {
	mult := 1
	for _, u := range []struct {
		suffix string
		n      int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.n
			break
		}
	}
	return int(r.int(v)) * mult
}

// node resolves a node reference: an id, or a name bound by `node`.
func (r *runner) node(v string) int32 {
	if id, ok := r.nodes[v]; ok {
		return id
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		r.bad("unknown node %q (a node id, or a name bound with `node NAME = leader T/P`)", v)
	}
	id := int32(n)
	if r.c != nil && (id < 1 || int(id) > len(r.c.Nodes())) {
		r.bad("no node %d in a cluster of %d", id, len(r.c.Nodes()))
	}
	return id
}

// nodeList resolves "2,3" or "L,F".
func (r *runner) nodeList(v string) []int32 {
	var out []int32
	for _, w := range strings.Split(v, ",") {
		out = append(out, r.node(w))
	}
	return out
}

// tp parses "topic/partition".
func (r *runner) tp(v string) (string, int32) {
	i := strings.LastIndex(v, "/")
	if i <= 0 {
		r.bad("%q is not TOPIC/PARTITION", v)
	}
	p, err := strconv.ParseInt(v[i+1:], 10, 32)
	if err != nil || p < 0 {
		r.bad("%q is not TOPIC/PARTITION", v)
	}
	return v[:i], int32(p)
}

// stepTB is the runner's t as the cluster sees it: a failure inside the
// cluster (a node that does not restart, say) is reported with the step
// that caused it and the seed.
type stepTB struct {
	testing.TB
	r *runner
}

// Fatalf implements testing.TB.
func (s *stepTB) Fatalf(format string, args ...any) {
	s.TB.Helper()
	s.TB.Fatal(s.r.where() + fmt.Sprintf(format, args...) + s.r.seedNote())
}

// Fatal implements testing.TB.
func (s *stepTB) Fatal(args ...any) {
	s.TB.Helper()
	s.TB.Fatal(s.r.where() + fmt.Sprint(args...) + s.r.seedNote())
}

// Errorf implements testing.TB.
func (s *stepTB) Errorf(format string, args ...any) {
	s.TB.Helper()
	s.TB.Error(s.r.where() + fmt.Sprintf(format, args...) + s.r.seedNote())
}

// Error implements testing.TB.
func (s *stepTB) Error(args ...any) {
	s.TB.Helper()
	s.TB.Error(s.r.where() + fmt.Sprint(args...) + s.r.seedNote())
}
