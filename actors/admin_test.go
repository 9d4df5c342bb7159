package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/cluster"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// A record produced and read back with franz-go shows up in every admin
// endpoint: health, request and byte counters, the partition's high
// watermark, and the cluster view.
func TestAdminEndpoint(t *testing.T) {
	cfg := cluster.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	b, err := StartBroker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A second broker in the same process: its metrics live in a registry
	// of their own, and without AdminAddr it has no admin listener.
	other := startTestBroker(t, t.TempDir())
	defer other.Close()
	if a := other.AdminAddr(); a != "" {
		t.Errorf("AdminAddr without cfg.AdminAddr = %q, want empty", a)
	}

	base := "http://" + b.AdminAddr()
	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}

	const topic = "admin-demo"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// A consumer started before the topic existed would wait for its next
	// metadata refresh (5 s) to see it.
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for got := 0; got < 1; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got += fs.NumRecords()
	}

	// The fetch response is counted as the broker hands it over, which may
	// be a moment after the client has parsed it.
	var mfs map[string]*dto.MetricFamily
	wait.For(t, 10*time.Second, func() error { // until metrics
		mfs = scrape(t, base)
		if v := metricValue(mfs, "chronik_fetch_bytes_out_total", nil); v <= 0 {
			return fmt.Errorf("chronik_fetch_bytes_out_total = %v", v)
		}
		return nil
	})
	part := map[string]string{"topic": topic, "partition": "0"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		ok     func(float64) bool
		want   string
	}{
		{"chronik_kafka_requests_total", map[string]string{"api": "Produce"}, func(v float64) bool { return v > 0 }, "> 0"},
		{"chronik_kafka_requests_total", map[string]string{"api": "Fetch"}, func(v float64) bool { return v > 0 }, "> 0"},
		{"chronik_produce_bytes_in_total", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"chronik_partition_high_watermark", part, func(v float64) bool { return v == 1 }, "1"},
		{"chronik_partition_log_size_bytes", part, func(v float64) bool { return v > 0 }, "> 0"},
		{"chronik_partitions_hosted", nil, func(v float64) bool { return v >= 1 }, ">= 1"},
		{"chronik_open_connections", nil, func(v float64) bool { return v >= 1 }, ">= 1"},
	} {
		if v := metricValue(mfs, c.name, c.labels); !c.ok(v) {
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, v, c.want)
		}
	}

	code, body := httpGet(t, base+"/v1/cluster")
	if code != http.StatusOK {
		t.Fatalf("/v1/cluster: %d %s", code, body)
	}
	var cv clusterView
	if err := json.Unmarshal([]byte(body), &cv); err != nil {
		t.Fatalf("/v1/cluster: %v in %s", err, body)
	}
	if cv.NodeID != 1 || cv.KafkaAddr != b.Addr() {
		t.Errorf("/v1/cluster node: %+v", cv)
	}
	var found *topicView
	for i := range cv.Topics {
		if cv.Topics[i].Name == topic {
			found = &cv.Topics[i]
		}
	}
	if found == nil || found.ID == "" || len(found.Partitions) != 1 {
		t.Fatalf("/v1/cluster topic %s: %+v in %s", topic, found, body)
	}
	if p := found.Partitions[0]; p.Leader != 1 || p.LeaderEpoch < 1 || p.HighWatermark != 1 || p.LogStartOffset != 0 {
		t.Errorf("/v1/cluster partition: %+v", p)
	}
	if len(cv.Nodes) != 1 || cv.Nodes[0].ID != 1 || !cv.Nodes[0].Up || !cv.Nodes[0].Controller ||
		cv.Nodes[0].Kafka != b.Addr() || cv.Nodes[0].Admin != b.AdminAddr() || cv.ControllerID != 1 {
		t.Errorf("/v1/cluster nodes: controller %d, %+v", cv.ControllerID, cv.Nodes)
	}
	if p := found.Partitions[0]; p.Group == 0 || len(p.Replicas) != 1 || p.Replicas[0] != 1 {
		t.Errorf("/v1/cluster partition group and replicas: %+v", p)
	}
	// The leader's progress is published at its next tick (100 ms).
	wait.For(t, 10*time.Second, func() error {
		_, body := httpGet(t, base+"/v1/cluster")
		var cv clusterView
		if err := json.Unmarshal([]byte(body), &cv); err != nil {
			return err
		}
		for _, tv := range cv.Topics {
			if tv.Name != topic {
				continue
			}
			pr := tv.Partitions[0].Progress
			if pr == nil || len(pr.Replicas) != 1 || pr.Replicas[0].ID != 1 || !pr.Replicas[0].InSync ||
				pr.Replicas[0].Lag != 0 || pr.LastIndex == 0 || pr.Term < 1 {
				return fmt.Errorf("partition 0 progress: %+v", pr)
			}
			return nil
		}
		return fmt.Errorf("no topic %s in %s", topic, body)
	})

	resp, err := http.Post(base+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", resp.StatusCode)
	}

	// Close shuts the admin listener down with the broker.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("/healthz after Close: %d, want the connection refused", resp.StatusCode)
	}
}

// /healthz is 503 whenever the broker does not serve Kafka: before the
// listener is up and once Close began.
func TestAdminHealthzNotServing(t *testing.T) {
	rec := httptest.NewRecorder()
	(&Broker{}).serveHealthz(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("got %d, want 503", rec.Code)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	// The zero TextParser panics in this version of common: it needs a
	// name validation scheme.
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return mfs
}

// metricValue is the counter or gauge of family name whose labels include
// want, or -1 when there is none.
func metricValue(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return -1
}
