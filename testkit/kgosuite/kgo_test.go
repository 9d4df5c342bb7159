package kgosuite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit"
)

const kgoPkg = "github.com/twmb/franz-go/pkg/kgo"

// plainTests are the kgo tests that talk to a broker without
// transactions: produce and consume paths, consumer groups (classic,
// cooperative, static members and KIP-848, as the broker advertises
// them), regex subscriptions, pausing, partition growth. TestGroupETL is
// the long one: a producer and three levels of consumer groups whose
// members join and leave, checking nothing is consumed twice or lost.
var plainTests = []string{
	"TestGroupETL",
	"TestGroupSimple",
	"TestIssue325",
	"TestIssue337",
	"TestIssue434",
	"TestIssue523",
	"TestIssue648",
	"TestIssue769",
	"TestIssue810",
	"TestIssue831",
	"TestIssue865",
	"TestIssue1034",
	"TestIssueFetchLargerThanBrokerMaxReadBytes",
	"TestConsumeTopicRetrieval",
	"TestConsumeTopicRetrieval_Many",
	"TestConsumeRegex",
	"TestDirectPartitionPurge",
	"TestAddRemovePartitions",
	"TestPauseIssue489",
	"TestPauseIssueOct2023",
	"TestPooling",
	"TestHookPollStart",
	"TestClient_Produce",
	"TestClient_ProduceLargeMessages",
	"TestPing",
}

// txnTests need transactions: TestTxnEtl is TestGroupETL with every
// level a GroupTransactSession (read_committed, TxnOffsetCommit, EndTxn)
// and members that leave mid-transaction.
var txnTests = []string{"TestTxnEtl"}

// txnAPIs are what a transactional kgo client sends besides a
// producer's requests.
var txnAPIs = map[int16]string{24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit"}

// TestKgoSuite runs franz-go's kgo integration tests (plainTests, and
// txnTests when the broker serves transactions; otherwise each fails at
// once: TestTxnEtl would retry COORDINATOR_NOT_AVAILABLE until its
// timeout) against one chronik-actor process and against a cluster of
// three (replication factor 3).
//
// The kgo tests read their settings from the environment: KGO_SEEDS,
// KGO_TEST_RF (replication factor of the topics they create),
// KGO_TEST_RECORDS (records through the ETL tests; 500,000 by default,
// here 50,000 on one node and 20,000 on three) and
// KGO_TEST_MAX_TOPIC_PARTS (partitions per topic, at most 7, 11 or 31;
// capped here at 6). CHRONIK_KGO_LOG_LEVEL (info, debug; default none)
// sets their KGO_LOG_LEVEL.
func TestKgoSuite(t *testing.T) {
	testkit.SkipUnlessChronik(t, "runs chronik-actor processes")
	t.Run("1 node", func(t *testing.T) {
		p := testkit.StartProcess(t, t.TempDir())
		runSuite(t, p.Addr(), 1, 50000)
	})
	t.Run("3 nodes", func(t *testing.T) {
		c := testkit.NewProcessCluster(t, 3)
		// The cluster has formed; make sure it takes a topic before the
		// suite's first CreateTopics.
		testkit.CreateClusterTopic(t, c, "kgosuite-warmup", 1, 3)
		runSuite(t, c.Seeds(), 3, 20000)
	})
}

// result is one kgo test's (or subtest's) outcome in `go test -v`
// output.
type result struct {
	status  string // PASS, FAIL, SKIP
	elapsed string
}

var resultLine = regexp.MustCompile(`^(\s*)--- (PASS|FAIL|SKIP): (\S+) \(([^)]*)\)`)

func runSuite(t *testing.T, seeds string, rf, records int) {
	missing := missingAPIs(t, seeds)
	tests := append([]string(nil), plainTests...)
	if len(missing) == 0 {
		tests = append(tests, txnTests...)
	}
	level := os.Getenv("CHRONIK_KGO_LOG_LEVEL")
	if level == "" {
		level = "none"
	}
	env := []string{
		"KGO_SEEDS=" + seeds,
		"KGO_TEST_RF=" + strconv.Itoa(rf),
		"KGO_TEST_RECORDS=" + strconv.Itoa(records),
		"KGO_TEST_MAX_TOPIC_PARTS=6",
		"KGO_LOG_LEVEL=" + level,
	}
	const within = 8 * time.Minute
	args := []string{"test", "-count=1", "-timeout", within.String(), "-v", "-run", "^(" + strings.Join(tests, "|") + ")$", kgoPkg}
	t.Logf("%s go %s", strings.Join(env, " "), strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(context.Background(), within+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(start)
	results := map[string]result{}
	var skipped []string
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		m := resultLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		results[m[3]] = result{status: m[2], elapsed: m[4]}
		if m[2] == "SKIP" {
			skipped = append(skipped, m[3])
		}
	}
	sort.Strings(skipped)
	t.Logf("go test %s: %v after %v; skipped by kgo (what the broker does not advertise): %v", kgoPkg, runErrString(runErr), elapsed.Round(time.Second), skipped)
	failed := false
	for _, name := range tests {
		t.Run(name, func(t *testing.T) {
			r, ok := results[name]
			switch {
			case !ok:
				failed = true
				t.Fatalf("no result for %s: the run ended with %v (context: %v) first", name, runErrString(runErr), ctx.Err())
			case r.status == "FAIL":
				failed = true
				var subs []string
				for sub, sr := range results {
					if strings.HasPrefix(sub, name+"/") && sr.status == "FAIL" {
						subs = append(subs, sub)
					}
				}
				sort.Strings(subs)
				t.Errorf("%s failed after %s (failed subtests: %v); its lines of the output:\n%s", name, r.elapsed, subs, linesOf(out.Bytes(), name))
			default:
				t.Logf("%s: %s (%s)", name, r.status, r.elapsed)
			}
		})
	}
	for _, name := range txnTests {
		if len(missing) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Fatalf("not run: the broker does not serve transactions (ApiVersions lacks %s), and %s would retry COORDINATOR_NOT_AVAILABLE until it times out", strings.Join(missing, ", "), name)
		})
	}
	if failed || (runErr != nil && !t.Failed()) {
		t.Errorf("go test %s: %v; last lines of its output:\n%s", kgoPkg, runErrString(runErr), tail(out.Bytes(), 150))
	}
}

// missingAPIs names the transaction APIs the broker does not advertise.
func missingAPIs(t *testing.T, seeds string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(seeds, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	have := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		have[k.ApiKey] = true
	}
	var missing []string
	for key, name := range txnAPIs {
		if !have[key] {
			missing = append(missing, fmt.Sprintf("%s (key %d)", name, key))
		}
	}
	sort.Strings(missing)
	return missing
}

func runErrString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// linesOf is the output lines that name test (its === RUN, log and
// result lines), at most the last 200.
func linesOf(out []byte, test string) string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, test) {
			lines = append(lines, l)
		}
	}
	if len(lines) > 200 {
		lines = lines[len(lines)-200:]
	}
	return strings.Join(lines, "\n")
}

func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
