package clustertest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// Three chronik-actor processes: the leader SIGKILLed, the others elect
// and take writes; restarted on its data dir it catches up, and every
// acknowledged record is there once, in order.
func TestProcessClusterKillRestart(t *testing.T) {
	c := testkit.NewProcessCluster(t, 3)
	testkit.CreateClusterTopic(t, c, "pkill", 1, 3)
	old := c.WaitForLeader("pkill", 0)
	cl := producer(c)
	produce(t, cl, "pkill", "a", 50, 30*time.Second)
	c.Kill(old)
	if l := c.WaitForLeader("pkill", 0); l == old {
		t.Fatalf("killed node %d still named leader", old)
	}
	produce(t, cl, "pkill", "b", 50, 30*time.Second)
	c.Restart(old)
	c.Eventually(30*time.Second, func() error { return c.ReplicasAgree("pkill", 0) })
	if got := readAll(t, c, "pkill", 100); !slices.Equal(got, append(values("a", 50), values("b", 50)...)) {
		t.Fatalf("read back %v", got)
	}
}

// The leader isolated through the nodes' /v1/faults (its own cut list
// names both peers, theirs name it): a write sent to it alone with
// acks=all is not acknowledged, the others elect and take writes, and
// after the heal every replica holds the same records, none of those
// sent to the cut-off leader.
func TestProcessClusterPartitionHeal(t *testing.T) {
	c := testkit.NewProcessCluster(t, 3, testkit.ClusterSeed(7))
	if c.Seed() != 7 {
		t.Fatalf("Seed() = %d after ClusterSeed(7)", c.Seed())
	}
	testkit.CreateClusterTopic(t, c, "psplit", 1, 3)
	old := c.WaitForLeader("psplit", 0)
	produce(t, producer(c), "psplit", "before", 10, 30*time.Second)
	c.Isolate(old)
	if body := getFaults(t, c.AdminAddr(old)); !strings.Contains(body, fmt.Sprintf(`"cut":[%s]`, othersOf(c, old))) ||
		!strings.Contains(body, fmt.Sprintf(`"seed":%d`, 7+old)) {
		t.Fatalf("node %d's faults after Isolate: %s", old, body)
	}
	for i := 0; i < 2; i++ {
		off, err := c.ProduceTo(old, "psplit", 0, 2*time.Second, []byte(fmt.Sprint("lost-", i)))
		if err == nil {
			t.Fatalf("lost-%d acknowledged by the cut-off leader %d at offset %d", i, old, off)
		}
		if !errors.Is(err, kerr.NotLeaderForPartition) && !errors.Is(err, kerr.RequestTimedOut) {
			t.Fatalf("lost-%d on the cut-off leader: %v, want NOT_LEADER_OR_FOLLOWER or REQUEST_TIMED_OUT", i, err)
		}
	}
	if l := c.WaitForLeader("psplit", 0); l == old {
		t.Fatalf("the cut-off node %d still leads", old)
	}
	produce(t, producer(c), "psplit", "after", 10, 30*time.Second)
	c.Heal()
	if body := getFaults(t, c.AdminAddr(old)); !strings.Contains(body, `"cut":[]`) {
		t.Fatalf("node %d's faults after Heal: %s", old, body)
	}
	c.Eventually(30*time.Second, func() error { return c.ReplicasAgree("psplit", 0) })
	if got := readAll(t, c, "psplit", 20); !slices.Equal(got, append(values("before", 10), values("after", 10)...)) {
		t.Fatalf("read back %v", got)
	}
	for _, id := range c.Nodes() {
		if r, err := c.ReadReplica(id, "psplit", 0); err != nil || r.HighWatermark != 20 || strings.Contains(string(r.Batches), "lost-") {
			t.Fatalf("node %d: high watermark %d (%v), want 20 and no lost- record", id, r.HighWatermark, err)
		}
	}
}

func getFaults(t *testing.T, admin string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+admin+"/v1/faults", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true // no idle connection left behind for the leak check
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// othersOf is the ids of c's nodes but id, comma-separated.
func othersOf(c testkit.Cluster, id int32) string {
	var out []string
	for _, o := range c.Nodes() {
		if o != id {
			out = append(out, fmt.Sprint(o))
		}
	}
	return strings.Join(out, ",")
}

// The leader SIGSTOPped: the others elect and take writes; SIGCONT, it
// learns it was deposed and catches up.
func TestProcessClusterPauseResume(t *testing.T) {
	c := testkit.NewProcessCluster(t, 3)
	testkit.CreateClusterTopic(t, c, "ppause", 1, 3)
	old := c.WaitForLeader("ppause", 0)
	produce(t, producer(c), "ppause", "a", 10, 30*time.Second)
	c.Pause(old)
	if err := probeApiVersions(c.Addr(old), 500*time.Millisecond); err == nil {
		t.Fatalf("SIGSTOPped node %d answered ApiVersions", old)
	}
	if l := c.WaitForLeader("ppause", 0); l == old {
		t.Fatalf("stopped node %d still named leader", old)
	}
	produce(t, producer(c), "ppause", "b", 10, 30*time.Second)
	c.Resume(old)
	c.Eventually(30*time.Second, func() error { return c.ReplicasAgree("ppause", 0) })
	if got := readAll(t, c, "ppause", 20); !slices.Equal(got, append(values("a", 10), values("b", 10)...)) {
		t.Fatalf("read back %v", got)
	}
}
