package testkit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// Helpers shared by the cluster benchmarks (failover_bench_test.go,
// catchup_bench_test.go).

var adminHTTP = &http.Client{Timeout: 5 * time.Second}

// nodeView is node p's /v1/cluster.
func nodeView(p *Process) (*cluster.View, error) {
	resp, err := adminHTTP.Get("http://" + p.AdminAddr() + "/v1/cluster")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/cluster of %s: %s", p.AdminAddr(), resp.Status)
	}
	var v cluster.View
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("GET /v1/cluster of %s: %w", p.AdminAddr(), err)
	}
	return &v, nil
}

// topicView is topic's entry of v, nil when v does not list it.
func topicOf(v *cluster.View, topic string) *cluster.TopicView {
	for i := range v.Topics {
		if v.Topics[i].Name == topic {
			return &v.Topics[i]
		}
	}
	return nil
}

// inSyncOnLeaders checks, for every partition of topic, that its leader's
// own /v1/cluster counts node id in sync with a lag of at most maxLag
// raft entries, and, when hwEqual, that node id's replica has the
// leader's high watermark. procs[i] is node i+1 (StartCluster).
func inSyncOnLeaders(procs []*Process, topic string, id int32, maxLag uint64, hwEqual bool) error {
	views := map[int32]*cluster.View{}
	view := func(n int32) (*cluster.View, error) {
		if v, ok := views[n]; ok {
			return v, nil
		}
		v, err := nodeView(procs[n-1])
		if err != nil {
			return nil, err
		}
		views[n] = v
		return v, nil
	}
	self, err := view(id)
	if err != nil {
		return err
	}
	mine := topicOf(self, topic)
	if mine == nil {
		return fmt.Errorf("node %d does not know topic %s yet", id, topic)
	}
	for _, pv := range mine.Partitions {
		if pv.Leader <= 0 {
			return fmt.Errorf("partition %d: node %d knows no leader", pv.Partition, id)
		}
		lv, err := view(pv.Leader)
		if err != nil {
			return err
		}
		lt := topicOf(lv, topic)
		if lt == nil || int(pv.Partition) >= len(lt.Partitions) {
			return fmt.Errorf("partition %d: leader %d does not list it", pv.Partition, pv.Leader)
		}
		lp := lt.Partitions[pv.Partition]
		if lp.Progress == nil {
			return fmt.Errorf("partition %d: node %d does not lead it (no progress)", pv.Partition, pv.Leader)
		}
		i := slices.IndexFunc(lp.Progress.Replicas, func(r cluster.ReplicaProgress) bool { return r.ID == id })
		if i < 0 {
			return fmt.Errorf("partition %d: leader %d's progress has no node %d", pv.Partition, pv.Leader, id)
		}
		rp := lp.Progress.Replicas[i]
		if !rp.InSync || rp.Lag > maxLag {
			return fmt.Errorf("partition %d: leader %d has node %d in sync %v, lag %d", pv.Partition, pv.Leader, id, rp.InSync, rp.Lag)
		}
		if hwEqual && pv.HighWatermark != lp.HighWatermark {
			return fmt.Errorf("partition %d: node %d at high watermark %d, leader %d at %d", pv.Partition, id, pv.HighWatermark, pv.Leader, lp.HighWatermark)
		}
	}
	return nil
}

// countLogLines counts the lines of p's log (every start of it) that
// contain s.
func countLogLines(p *Process, s string) int {
	f, err := os.Open(p.logPath)
	if err != nil {
		return -1
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	return n
}

// logLoad logs the machine's load averages: other work shares the cores.
func logLoad(b testing.TB, when string) {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	b.Logf("load average %s: %s", when, strings.TrimSpace(string(raw)))
}

// durStats are the median, min and max of ds (sorted in place).
func durStats(ds []time.Duration) (median, lo, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	n := len(ds)
	median = ds[n/2]
	if n%2 == 0 {
		median = (ds[n/2-1] + ds[n/2]) / 2
	}
	return median, ds[0], ds[n-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
