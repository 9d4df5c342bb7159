package testkit

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGroupKcat consumes a topic of known records with kcat -G, librdkafka's
// balanced consumer (JoinGroup, SyncGroup, Heartbeat, OffsetFetch,
// OffsetCommit, LeaveGroup): every record is read exactly once, each at the
// offset it was produced, and the group's committed offsets end at the end
// offsets (librdkafka commits periodically and when it closes).
func TestGroupKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not on PATH: run `make test`, which installs Debian's kcat package when it is missing")
	}
	const partitions, records = 3, 900
	f := newGroupFixture(t, classicGroupAPIs, partitions)
	ends := f.produce("kcat", records, 30)

	// kcat 1.7 honours -e in -G mode: it exits once every assigned
	// partition reached its end, then closes the consumer (final commit,
	// LeaveGroup). The deadline only bounds a consumer that never gets there.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{
		"-b", f.addr, "-G", f.group,
		"-X", "auto.offset.reset=earliest",
		"-X", "auto.commit.interval.ms=200",
		"-e", "-q",
		"-f", "%p %o %s\n",
		f.topic,
	}
	cmd := exec.CommandContext(ctx, kcat, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %s: %v (context: %v)\nstderr:\n%s\nstdout: %d lines", strings.Join(args, " "), err, ctx.Err(), stderr.String(), strings.Count(string(out), "\n"))
	}

	got := map[int32]map[int64]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 {
			t.Fatalf("kcat line %q is not \"partition offset value\"", line)
		}
		p, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("kcat line %q is not \"partition offset value\"", line)
		}
		if got[int32(p)] == nil {
			got[int32(p)] = map[int64]string{}
		}
		if prev, dup := got[int32(p)][o]; dup {
			t.Fatalf("partition %d offset %d read twice (%q, then %q)", p, o, prev, f[2])
		}
		got[int32(p)][o] = f[2]
	}
	total, values := 0, map[string]bool{}
	for p := int32(0); p < partitions; p++ {
		if n := int64(len(got[p])); n != ends[p] {
			t.Errorf("partition %d: kcat read %d records, the partition holds %d", p, n, ends[p])
		}
		for o := int64(0); o < ends[p]; o++ {
			if v, ok := got[p][o]; ok {
				values[v] = true
				total++
			}
		}
	}
	for i := 0; i < records; i++ {
		if v := fmt.Sprintf("kcat-%d", i); !values[v] {
			t.Fatalf("record %q never read (%d of %d read)", v, total, records)
		}
	}
	f.waitCommitted(ends, 30*time.Second)
}
