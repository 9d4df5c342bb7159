package testkit

import (
	"strings"
	"testing"
	"time"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// WithNodeConfig on a process cluster becomes cluster.toml: [cluster]
// keys from node 1's tuning, each node's rack, [testing] faults on; a
// tuning of anything the file cannot say is told apart.
func TestProcessClusterFile(t *testing.T) {
	racks := map[int32]string{1: "r1", 2: "r2", 3: "r3"}
	o := newClusterOptions(3, []ClusterOption{WithPartitions(4), WithNodeConfig(func(c *cluster.Config) {
		c.FlushInterval = 50 * time.Millisecond
		c.Rack = racks[c.NodeID]
	})})
	f := processClusterFile(t, 3, o)
	for _, want := range []string{"replication_factor = 3\n", "partitions = 4\n", "flush_interval = \"50ms\"\n", "offsets_partitions = 1\n"} {
		if !strings.Contains(f.cluster, want) {
			t.Errorf("[cluster] lacks %q:\n%s", want, f.cluster)
		}
	}
	if len(f.racks) != 3 || f.racks[2] != "r2" || f.testing != "faults = true\n" {
		t.Errorf("racks %v, [testing] %q", f.racks, f.testing)
	}
	base := cluster.Default()
	tuned := base
	tuned.SegmentBytes, tuned.Rack = 1<<20, "r9"
	if !sameOutsideFile(base, tuned) {
		t.Error("segment_bytes and rack are in cluster.toml, yet told apart")
	}
	tuned.TickInterval = time.Millisecond
	if sameOutsideFile(base, tuned) {
		t.Error("TickInterval is not in cluster.toml, yet not told apart")
	}
	tuned = base
	tuned.Network = func(cluster.Outbound) cluster.Fate { return cluster.Fate{} }
	if sameOutsideFile(base, tuned) {
		t.Error("a Network hook is not in cluster.toml, yet not told apart")
	}
}
