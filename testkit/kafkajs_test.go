package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkajsSummary is what testkit/kafkajs/check.js prints on stdout.
type kafkajsSummary struct {
	kafkajsRun
	Topic      string `json:"topic"`
	Partitions []struct {
		Partition int32 `json:"partition"`
		Leader    int32 `json:"leader"`
	} `json:"partitions"`
	Produced []kafkajsRecord `json:"produced"`
	Offsets  []struct {
		Partition int32 `json:"partition"`
		Low       int64 `json:"low"`
		High      int64 `json:"high"`
	} `json:"offsets"`
	Fetched []kafkajsRecord `json:"fetched"`
	Groups  *struct {
		GroupID     string `json:"groupId"`
		Unsupported *struct {
			APIKey  int16  `json:"apiKey"`
			APIName string `json:"apiName"`
			Message string `json:"message"`
		} `json:"unsupported"`
		Error    json.RawMessage `json:"error"`
		Consumed []kafkajsRecord `json:"consumed"`
	} `json:"groups"`
}

// kafkajsRun is what every script's summary holds (testkit/kafkajs/harness.js).
type kafkajsRun struct {
	Kafkajs string `json:"kafkajs"`
	Node    string `json:"node"`
	Steps   []struct {
		Name  string          `json:"name"`
		MS    int64           `json:"ms"`
		Error json.RawMessage `json:"error"`
	} `json:"steps"`
	Requests map[string]int  `json:"requests"`
	Error    json.RawMessage `json:"error"`
}

func (r *kafkajsRun) run() *kafkajsRun { return r }

// runKafkajs runs testkit/kafkajs/<script> with args under node, within
// the given time, and decodes the summary it prints into sum. It fails
// the test unless every step and the script itself succeeded; the
// script's stderr (the kafkajs log) is logged when the test fails.
func runKafkajs(t *testing.T, within time.Duration, sum interface{ run() *kafkajsRun }, script string, args ...string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: install Node.js (v18+), then run `make test`, which runs `npm ci` in testkit/kafkajs")
	}
	path, err := filepath.Abs(filepath.Join("kafkajs", script))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "node_modules", "kafkajs", "package.json")); err != nil {
		t.Fatalf("kafkajs is not installed in testkit/kafkajs/node_modules (%v): run `make test`, which runs `npm ci` there when it is missing", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{path}, args...)...)
	cmd.Env = append(os.Environ(), "KAFKAJS_NO_PARTITIONER_WARNING=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(start)

	if err := json.Unmarshal(stdout.Bytes(), sum); err != nil {
		out := stdout.String()
		if len(out) > 4096 {
			out = out[:2048] + fmt.Sprintf("\n... (%d bytes) ...\n", len(out)-4096) + out[len(out)-2048:]
		}
		t.Fatalf("node %s %s: %v (context: %v); its stdout is not the JSON summary (%v):\n%s\nstderr:\n%s",
			script, strings.Join(args, " "), runErr, ctx.Err(), err, out, stderr.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s stderr (kafkajs log):\n%s", script, stderr.String())
		}
	})
	r := sum.run()
	t.Logf("kafkajs %s on node %s, %v; requests answered: %s", r.Kafkajs, r.Node, elapsed.Round(time.Millisecond), kafkajsRequests(r.Requests))
	for _, s := range r.Steps {
		if jsonSet(s.Error) {
			t.Errorf("kafkajs step %q failed after %d ms: %s", s.Name, s.MS, s.Error)
		}
	}
	if jsonSet(r.Error) || runErr != nil {
		t.Fatalf("%s: %v (context: %v), error %s", script, runErr, ctx.Err(), r.Error)
	}
}

// kafkajsRecord is one record as produced or consumed; bytes are base64 in
// the JSON, null stays nil (a tombstone's value).
type kafkajsRecord struct {
	Batch     string          `json:"batch,omitempty"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       []byte          `json:"key"`
	Value     []byte          `json:"value"`
	Timestamp string          `json:"timestamp"`
	Headers   []kafkajsHeader `json:"headers"`
}

type kafkajsHeader struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

func (r kafkajsRecord) String() string {
	var hs []string
	for _, h := range r.Headers {
		hs = append(hs, fmt.Sprintf("%s=%q", h.Key, h.Value))
	}
	v := "null"
	if r.Value != nil {
		v = fmt.Sprintf("%q", r.Value)
	}
	return fmt.Sprintf("p%d@%d key=%q value=%s ts=%s headers=[%s]", r.Partition, r.Offset, r.Key, v, r.Timestamp, strings.Join(hs, " "))
}

func jsonSet(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null"
}

// TestKafkajs drives the broker with kafkajs 2.2.4 (pure JavaScript, no code
// shared with franz-go or librdkafka) through testkit/kafkajs/check.js:
// admin createTopics and metadata, an idempotent producer (200 keyed records
// with headers and timestamps), a gzip batch from a plain producer, and
// fetchTopicOffsets, whose high watermarks must account for every record at
// the offset its produce response implied. The records are read back with
// the Fetch request and decoder kafkajs's consumer uses, without a group,
// and must equal those produced (key, value, headers, timestamp, partition,
// offset). kafkajs's consumer only works in a group: when the broker
// advertises the classic group APIs, the group consumer must read the same
// records; when it does not, kafkajs must say which API it lacks and the
// check logs it.
func TestKafkajs(t *testing.T) {
	tg := StartTarget(t)
	topic := fmt.Sprintf("kafkajs-%d", time.Now().UnixNano()%1_000_000)
	missing := kafkajsMissingAPIs(t, tg.Addr(), kafkajsGroupAPIs)
	var sum kafkajsSummary
	runKafkajs(t, 60*time.Second, &sum, "check.js", tg.Addr(), topic)

	const partitions, idempotent, gzipped = 3, 200, 50
	t.Run("metadata", func(t *testing.T) {
		if len(sum.Partitions) != partitions {
			t.Fatalf("fetchTopicMetadata: %d partitions, want %d: %+v", len(sum.Partitions), partitions, sum.Partitions)
		}
		for _, p := range sum.Partitions {
			if p.Leader < 0 {
				t.Errorf("partition %d has no leader", p.Partition)
			}
		}
	})

	t.Run("produce and watermarks", func(t *testing.T) {
		perBatch := map[string]int{}
		perPart := map[int32][]int64{}
		for _, r := range sum.Produced {
			perBatch[r.Batch]++
			perPart[r.Partition] = append(perPart[r.Partition], r.Offset)
		}
		if perBatch["idempotent"] != idempotent || perBatch["gzip"] != gzipped || len(sum.Produced) != idempotent+gzipped {
			t.Fatalf("produced %v (%d records), want %d idempotent and %d gzip", perBatch, len(sum.Produced), idempotent, gzipped)
		}
		// Each partition's offsets, as the produce responses put them, are
		// 0..n-1: no gap, no overlap between the sends.
		for p, offs := range perPart {
			sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
			for i, o := range offs {
				if o != int64(i) {
					t.Fatalf("partition %d: produce responses imply offsets %v, want 0..%d", p, offs, len(offs)-1)
				}
			}
		}
		if len(sum.Offsets) != partitions {
			t.Fatalf("fetchTopicOffsets: %d partitions, want %d: %+v", len(sum.Offsets), partitions, sum.Offsets)
		}
		var total int64
		for _, o := range sum.Offsets {
			total += o.High
			if o.Low != 0 || o.High != int64(len(perPart[o.Partition])) {
				t.Errorf("partition %d: watermarks low %d high %d, want 0 and %d (records produced there)", o.Partition, o.Low, o.High, len(perPart[o.Partition]))
			}
		}
		if total != int64(len(sum.Produced)) {
			t.Errorf("high watermarks sum to %d, want %d", total, len(sum.Produced))
		}
	})

	t.Run("fetch without a group", func(t *testing.T) {
		if sum.Fetched == nil {
			t.Fatal("check.js fetched nothing (see the failed step above)")
		}
		kafkajsSame(t, "kafkajs's Fetch", sum.Produced, sum.Fetched)
		if !t.Failed() {
			t.Logf("kafkajs's Fetch read back all %d records, identical and in order", len(sum.Fetched))
		}
	})

	t.Run("group consume", func(t *testing.T) {
		g := sum.Groups
		if g == nil {
			t.Fatal("check.js reported no group consumer")
		}
		if len(missing) > 0 {
			// The broker does not advertise the group APIs: kafkajs must
			// notice before sending anything, and name one of them.
			if g.Unsupported == nil {
				t.Fatalf("the broker lacks %s, yet kafkajs did not report an unsupported API (error %s, %d consumed)", strings.Join(missing, ", "), g.Error, len(g.Consumed))
			}
			t.Logf("not consumed: the broker does not advertise %s; kafkajs stopped at %s (key %d): %s",
				strings.Join(missing, ", "), g.Unsupported.APIName, g.Unsupported.APIKey, g.Unsupported.Message)
			return
		}
		if g.Unsupported != nil || jsonSet(g.Error) {
			t.Fatalf("group %s: the broker advertises the classic group APIs, but kafkajs failed: unsupported %+v, error %s (%d of %d consumed)",
				g.GroupID, g.Unsupported, g.Error, len(g.Consumed), len(sum.Produced))
		}
		kafkajsSame(t, "the group consumer", sum.Produced, g.Consumed)
		if !t.Failed() {
			t.Logf("group %s read back all %d records, identical and in order", g.GroupID, len(g.Consumed))
		}
	})
}

// kafkajsSame checks that got holds every produced record exactly once,
// identical (key, value, headers, timestamp) at the partition and offset the
// produce responses implied, and in offset order within each partition.
func kafkajsSame(t *testing.T, who string, produced, got []kafkajsRecord) {
	t.Helper()
	want := map[[2]int64]kafkajsRecord{}
	for _, r := range produced {
		r.Batch = ""
		want[[2]int64{int64(r.Partition), r.Offset}] = r
	}
	seen := map[[2]int64]bool{}
	bad := 0
	for _, r := range got {
		at := [2]int64{int64(r.Partition), r.Offset}
		w, ok := want[at]
		switch {
		case !ok:
			t.Errorf("%s read a record nobody produced: %v", who, r)
		case seen[at]:
			t.Errorf("%s read twice: %v", who, r)
		case r.String() != w.String():
			t.Errorf("at p%d@%d %s read\n  %v\nproduced\n  %v", r.Partition, r.Offset, who, r, w)
		default:
			seen[at] = true
			continue
		}
		seen[at] = true
		if bad++; bad >= 10 {
			t.Fatal("stopping after 10 mismatches")
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%s read %d distinct records, produced %d", who, len(seen), len(want))
	}
	last := map[int32]int64{}
	for _, r := range got {
		if l, ok := last[r.Partition]; ok && r.Offset <= l {
			t.Errorf("%s: partition %d: offset %d read after %d", who, r.Partition, r.Offset, l)
		}
		last[r.Partition] = r.Offset
	}
}

// kafkajsGroupAPIs are the API keys a kafkajs group consumer sends (and
// the least version kafkajs can speak): it looks each up in ApiVersions
// before sending and stops with KafkaJSServerDoesNotSupportApiKey when one
// is absent.
var kafkajsGroupAPIs = map[int16]int16{
	8:  0, // OffsetCommit
	9:  1, // OffsetFetch (kafkajs implements v1-v4)
	10: 0, // FindCoordinator
	11: 0, // JoinGroup
	12: 0, // Heartbeat
	13: 0, // LeaveGroup
	14: 0, // SyncGroup
}

// kafkajsMissingAPIs names the APIs of need the broker does not advertise
// (at least at the given version); nil when it serves them all.
func kafkajsMissingAPIs(t testing.TB, addr string, need map[int16]int16) []string {
	t.Helper()
	have := advertisedAPIs(t, addr)
	var missing []string
	for key, minV := range need {
		if maxV, ok := have[key]; !ok || maxV < minV {
			missing = append(missing, fmt.Sprintf("%s (key %d)", kmsg.NameForKey(key), key))
		}
	}
	sort.Strings(missing)
	return missing
}

// kafkajsRequests renders the tally of requests kafkajs sent, by API and
// version, sorted.
func kafkajsRequests(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s ×%d", k, m[k])
	}
	return b.String()
}
