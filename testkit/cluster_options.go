package testkit

import (
	"log/slog"
	"os"
	"time"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// ClusterOption tunes NewCluster and NewProcessCluster.
type ClusterOption func(*clusterOptions)

type clusterOptions struct {
	seed     int64
	seeded   bool
	tune     []func(*cluster.Config)
	rf       int16
	parts    int32
	log      *slog.Logger
	deadline time.Duration
}

// ClusterSeed fixes the seed of the cluster's random choices (Drop's
// losses), to replay a run whose Seed was logged. Which message a given
// draw decides still depends on timing, so a replay repeats the sequence
// of losses, not necessarily which messages they hit.
func ClusterSeed(seed int64) ClusterOption {
	return func(o *clusterOptions) { o.seed, o.seeded = seed, true }
}

// WithNodeConfig tunes each node's configuration, after the testkit's
// own settings and before the node starts (once per start: a Restart
// tunes afresh). On a process cluster only the settings cluster.toml
// has can be tuned (the [cluster] keys, taken from node 1's tuned
// configuration, and each node's rack); tuning any other field fails the
// test.
func WithNodeConfig(tune func(*cluster.Config)) ClusterOption {
	return func(o *clusterOptions) { o.tune = append(o.tune, tune) }
}

// WithReplicationFactor sets the cluster's default replication factor,
// for topics created with -1 or auto-created (default: min(3, nodes)).
func WithReplicationFactor(rf int16) ClusterOption {
	return func(o *clusterOptions) { o.rf = rf }
}

// WithPartitions sets the default partition count of auto-created topics
// and of CreateTopics with -1 (default 1).
func WithPartitions(n int32) ClusterOption {
	return func(o *clusterOptions) { o.parts = n }
}

// WithLogger gives the nodes of an in-process cluster a logger (each
// node's records carry node=ID). The default discards everything, unless
// CHRONIK_TEST_LOG is set: 1 (or info) logs at info level to stderr,
// debug at debug level. Process clusters log to files, shown when the
// test fails.
func WithLogger(l *slog.Logger) ClusterOption {
	return func(o *clusterOptions) { o.log = l }
}

// WithDeadline sets how long the cluster's own waits (its start,
// WaitForLeader, Restart) may take before they fail the test (default
// 30 s).
func WithDeadline(d time.Duration) ClusterOption {
	return func(o *clusterOptions) { o.deadline = d }
}

func newClusterOptions(n int, opts []ClusterOption) clusterOptions {
	o := clusterOptions{rf: int16(min(3, n)), parts: 1, deadline: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = envLogger()
	}
	return o
}

// envLogger is the logger CHRONIK_TEST_LOG asks for.
func envLogger() *slog.Logger {
	switch os.Getenv("CHRONIK_TEST_LOG") {
	case "", "0":
		return slog.New(slog.DiscardHandler)
	case "debug":
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
