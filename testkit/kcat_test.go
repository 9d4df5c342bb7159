package testkit

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestKcat drives the broker with kcat (librdkafka), a client that shares
// no code with franz-go: -L lists the broker and the topic, -P -K: produces
// keyed lines, and -C -e -K: reads them back identical: the same lines, and
// per key in the order produced (one key lands on one partition).
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not on PATH: run `make test`, which installs Debian's kcat package when it is missing")
	}
	tg := StartTarget(t)
	const topic = "kcat"
	CreateTopic(t, tg.Addr(), topic, 3, nil)

	run := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", tg.Addr()}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kcat %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}

	t.Run("metadata", func(t *testing.T) {
		md, err := kadm.NewClient(NewClient(t, tg.Addr())).BrokerMetadata(context.Background())
		if err != nil || len(md.Brokers) != 1 {
			t.Fatalf("broker metadata: %v, %d brokers", err, len(md.Brokers))
		}
		id := md.Brokers[0].NodeID
		if tg.Kind == KindChronik && id != 1 {
			t.Errorf("node id %d, want 1 (clients' tests assume ids start at 1)", id)
		}
		out := run("", "-L")
		for _, want := range []string{
			"1 brokers:",
			fmt.Sprintf("broker %d at %s", id, tg.Addr()),
			fmt.Sprintf("topic \"%s\" with 3 partitions:", topic),
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("kcat -L output lacks %q:\n%s", want, out)
			}
		}
		if !regexp.MustCompile(`partition 2, leader \d+, replicas: \d+, isrs: \d+`).MatchString(out) {
			t.Fatalf("kcat -L output lacks partition 2 with its leader, replicas and ISRs:\n%s", out)
		}
	})

	var lines []string
	for i := 0; i < 60; i++ {
		lines = append(lines, fmt.Sprintf("key%d:value %d from kcat", i%6, i))
	}
	t.Run("produce and consume", func(t *testing.T) {
		run(strings.Join(lines, "\n")+"\n", "-P", "-t", topic, "-K:")
		out := run("", "-C", "-t", topic, "-o", "beginning", "-e", "-K:", "-f", "%k:%s\n")
		got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")

		sortedGot, sortedWant := append([]string(nil), got...), append([]string(nil), lines...)
		sort.Strings(sortedGot)
		sort.Strings(sortedWant)
		if strings.Join(sortedGot, "\n") != strings.Join(sortedWant, "\n") {
			t.Fatalf("kcat read back %d lines, not the %d produced:\ngot:\n%s", len(got), len(lines), out)
		}
		perKey := func(ls []string) map[string][]string {
			m := map[string][]string{}
			for _, l := range ls {
				k, v, _ := strings.Cut(l, ":")
				m[k] = append(m[k], v)
			}
			return m
		}
		wantByKey, gotByKey := perKey(lines), perKey(got)
		for k, want := range wantByKey {
			if strings.Join(gotByKey[k], "|") != strings.Join(want, "|") {
				t.Fatalf("key %s: read back %q, produced %q (order within a key must hold)", k, gotByKey[k], want)
			}
		}
	})
}
