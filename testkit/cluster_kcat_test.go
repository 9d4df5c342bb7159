package testkit

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestClusterKcatLeaderKill produces keyed lines with kcat (librdkafka,
// idempotent, acks=all) into an RF=3 topic of a three-node cluster, fed
// through a pipe: the first half, then, once the cluster has acknowledged
// (nearly) all of it, a SIGKILL of partition 0's leader, then the rest. kcat must
// deliver every line (it exits 0 and reports no failed delivery), and
// reading the topic back with kcat gives every line exactly once, each
// key's lines in the order fed. Partition 0 took writes after the kill, so
// librdkafka did go through the failover.
func TestClusterKcatLeaderKill(t *testing.T) {
	SkipUnlessChronik(t, "a cluster of chronik-actor processes; kfake is no such cluster")
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not on PATH: run `make test`, which installs Debian's kcat package when it is missing")
	}
	const (
		topic      = "cluster-kcat"
		partitions = 3
		lines      = 2000
		keys       = 12
		lineBytes  = 64
		// kcat produces a line only once its reads of the pipe
		// (stdio's buffer, then 128-byte freads into its own) have got
		// past it: while the pipe stays open, up to a few KiB of what
		// was fed is withheld. The check waits for the first half
		// less that much before the kill.
		withheld    = (8 << 10) / lineBytes
		clusterSize = 3
	)
	procs := StartCluster(t, clusterSize)
	seeds := Seeds(procs)
	adm := kadm.NewClient(NewClient(t, seeds))
	createClusterTopic(t, adm, topic, partitions, clusterSize)

	pad := strings.Repeat("k", lineBytes-len("key00:line 0000 "))
	var want []string
	for i := 0; i < lines; i++ {
		want = append(want, fmt.Sprintf("key%d:line %04d %s", i%keys, i, pad))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	producer := exec.CommandContext(ctx, kcat, "-P", "-b", seeds, "-t", topic, "-K:",
		"-X", "acks=all", "-X", "enable.idempotence=true",
		// librdkafka's default gives up on a message after 300 s; the
		// check's own deadline is shorter.
		"-X", "message.timeout.ms=90000")
	stdin, err := producer.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	producer.Stdout, producer.Stderr = io.Discard, &stderr
	if err := producer.Start(); err != nil {
		t.Fatalf("start kcat -P: %v", err)
	}
	feed := func(ls []string) {
		t.Helper()
		if _, err := io.WriteString(stdin, strings.Join(ls, "\n")+"\n"); err != nil {
			t.Fatalf("feed kcat: %v (stderr: %s)", err, stderr.String())
		}
	}
	half := lines / 2
	feed(want[:half])
	var atKill map[int32]int64
	wait.For(t, time.Minute, func() error {
		atKill = endOffsets(t, seeds, topic)
		if n := sum(atKill); n < int64(half-withheld) {
			return fmt.Errorf("%d of the first %d lines acknowledged (%v), waiting for %d; kcat stderr so far:\n%s", n, half, atKill, half-withheld, stderr.String())
		}
		return nil
	})
	leader := partitionLeader(t, adm, topic, 0)
	nodeProcess(t, adm, procs, leader).Kill()
	t.Logf("SIGKILL node %d (leader of partition 0) with %v stored", leader, atKill)
	feed(want[half:])
	stdin.Close()
	if err := producer.Wait(); err != nil {
		t.Fatalf("kcat -P: %v\nstderr:\n%s", err, stderr.String())
	}
	// Its "% ERROR: Local: Broker transport failure" lines about the
	// killed node are librdkafka's connection errors, not failures.
	for _, failed := range []string{"Delivery failed", "FATAL", "Failed to produce"} {
		if s := stderr.String(); strings.Contains(s, failed) {
			t.Fatalf("kcat -P reported %q:\n%s", failed, s)
		}
	}
	if ends := endOffsets(t, seeds, topic); ends[0] <= atKill[0] {
		t.Fatalf("partition 0 ends at %d as at the kill: nothing went through its new leader (ends %v)", ends[0], ends)
	}

	consumer := exec.CommandContext(ctx, kcat, "-C", "-b", seeds, "-t", topic, "-o", "beginning", "-e", "-q", "-K:", "-f", "%k:%s\n")
	var cerr strings.Builder
	consumer.Stderr = &cerr
	out, err := consumer.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v\nstderr:\n%s", err, cerr.String())
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	count := map[string]int{}
	for _, l := range got {
		count[l]++
	}
	for _, l := range want {
		switch n := count[l]; n {
		case 1:
		case 0:
			t.Errorf("line %q lost", l)
		default:
			t.Errorf("line %q read back %d times", l, n)
		}
		delete(count, l)
	}
	for l, n := range count {
		t.Errorf("read back %q (%d times), which was never fed", l, n)
	}
	if t.Failed() {
		t.FailNow()
	}
	// Within a key (one partition), the order fed.
	byKey := func(ls []string) map[string][]string {
		m := map[string][]string{}
		for _, l := range ls {
			k, _, _ := strings.Cut(l, ":")
			m[k] = append(m[k], l)
		}
		return m
	}
	gotByKey := byKey(got)
	for k, ls := range byKey(want) {
		if !slices.Equal(gotByKey[k], ls) {
			t.Fatalf("key %s: lines read back out of the order fed", k)
		}
	}
	t.Logf("%d lines read back exactly once", len(got))
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
