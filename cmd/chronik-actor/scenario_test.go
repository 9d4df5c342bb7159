package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScenarioUsage: a missing subcommand, no script, or a script that
// does not parse is a usage error (exit 2) that names what is wrong, and
// nothing runs.
func TestScenarioUsage(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.txt")
	if err := os.WriteFile(bad, []byte("cluster 3\nsleep 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"scenario"}, "usage: chronik-actor scenario run"},
		{[]string{"scenario", "run"}, "no script given"},
		{[]string{"scenario", "run", "--seed", "x", bad}, "invalid value"},
		{[]string{"scenario", "run", bad}, "bad.txt:2: unknown command \"sleep\""},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(c.args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr.String(), exitUsage, c.want)
		}
	}
}

// TestScenarioRun: a script run from the command line prints its seed,
// its steps (not with --quiet) and PASS, and exits 0; a failing one
// prints the failure with its line and the seed given, runs nothing
// after it, and exits 1.
func TestScenarioRun(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	failing := filepath.Join(dir, "failing.txt")
	os.WriteFile(good, []byte("cluster 1\ncreate-topic t partitions=1 rf=1\nproduce t/0 a -> ok offset=0\nconsume t/0 -> a\n"), 0o644)
	os.WriteFile(failing, []byte("cluster 1\ncreate-topic t partitions=1 rf=1\nproduce t/0 a\nconsume t/0 within 500ms -> b\nproduce t/0 never\n"), 0o644)

	var stdout, stderr bytes.Buffer
	if code := run([]string{"scenario", "run", good, "--seed", "11"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("good script: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"seed 11", "good.txt:3: produce t/0 a -> ok offset=0", "PASS " + good} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("good script's output lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := run([]string{"scenario", "run", "--quiet", good}, &stdout, &stderr); code != exitOK {
		t.Fatalf("good script, quiet: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "seed ") || !strings.Contains(out, "PASS ") || strings.Contains(out, "good.txt:3") {
		t.Errorf("quiet output, want the seed and PASS but no steps:\n%s", out)
	}

	stdout.Reset()
	if code := run([]string{"scenario", "run", "--seed", "12", failing}, &stdout, &stderr); code != exitFailure {
		t.Fatalf("failing script: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"failing.txt:4: consume t/0 within 500ms -> b", "expected: b", "got:      a", "seed:     12", "FAIL " + failing} {
		if !strings.Contains(out, want) {
			t.Errorf("failing script's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "failing.txt:5") {
		t.Errorf("a step after the failure ran:\n%s", out)
	}
}
