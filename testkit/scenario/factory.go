package scenario

import (
	"testing"

	"github.com/chronik-actor/chronik-actor/cluster"
	"github.com/chronik-actor/chronik-actor/testkit"
)

// DefaultCluster is the Factory a run uses unless Options name another:
// testkit.NewCluster (in process), or testkit.NewProcessCluster for
// `cluster N processes`, seeded with the run's seed.
func DefaultCluster(t testing.TB, sp ClusterSpec) testkit.Cluster {
	t.Helper()
	opts := []testkit.ClusterOption{testkit.ClusterSeed(sp.Seed)}
	if sp.Processes {
		if sp.RetainLogBytes > 0 || sp.Tick > 0 {
			// Neither is in cluster.toml, the only way into a child process.
			t.Fatalf("cluster %d processes: retain-log= and tick= need an in-process cluster", sp.Nodes)
		}
		return testkit.NewProcessCluster(t, sp.Nodes, opts...)
	}
	if sp.RetainLogBytes > 0 {
		opts = append(opts, testkit.WithNodeConfig(func(c *cluster.Config) { c.RetainLogBytes = sp.RetainLogBytes }))
	}
	if sp.Tick > 0 {
		opts = append(opts, testkit.WithNodeConfig(func(c *cluster.Config) { c.TickInterval = sp.Tick }))
	}
	return testkit.NewCluster(t, sp.Nodes, opts...)
}
