package scenario

import (
	"slices"
	"strings"
	"testing"
)

// TestParse: words, options, "->" and its expectations, comments (a "#"
// starting a word), "within D" folded into within=, and ">=" and "="
// kept positional.
func TestParse(t *testing.T) {
	s, err := Parse("t.txt", `
# a comment line
cluster 3 retain-log=64KiB   # trailing comment
produce t/0 v1 v2 key=k acks=all -> ok offset=0
expect leader t/0 in 2,3 within 2s
expect hwm t/0 >= 3 on all
expect committed g t/0 = 5
partition 1 | 2 3
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Steps) != 6 {
		t.Fatalf("%d steps, want 6", len(s.Steps))
	}
	c := s.Steps[0]
	if c.Line != 3 || c.Cmd != "cluster" || !slices.Equal(c.Args, []string{"3"}) || c.KV["retain-log"] != "64KiB" || c.Text != "cluster 3 retain-log=64KiB" {
		t.Fatalf("cluster step: %+v", c)
	}
	p := s.Steps[1]
	if !slices.Equal(p.Args, []string{"t/0", "v1", "v2"}) || p.KV["key"] != "k" || p.KV["acks"] != "all" || !p.Arrow || !slices.Equal(p.Want, []string{"ok", "offset=0"}) {
		t.Fatalf("produce step: %+v", p)
	}
	if l := s.Steps[2]; l.key() != "expect leader" || l.KV["within"] != "2s" || !slices.Equal(l.Args, []string{"leader", "t/0", "in", "2,3"}) {
		t.Fatalf("expect leader step: %+v", l)
	}
	if h := s.Steps[3]; !slices.Equal(h.Args, []string{"hwm", "t/0", ">=", "3", "on", "all"}) || len(h.KV) != 0 {
		t.Fatalf("expect hwm step: %+v", h)
	}
	if h := s.Steps[4]; !slices.Equal(h.Args, []string{"committed", "g", "t/0", "=", "5"}) {
		t.Fatalf("expect committed step: %+v", h)
	}
	if pa := s.Steps[5]; !slices.Equal(pa.Args, []string{"1", "|", "2", "3"}) {
		t.Fatalf("partition step: %+v", pa)
	}
}

// TestParseErrors: a script with a mistake is refused before anything
// runs, with the file, the line and what is wrong.
func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"cluster 3\nfrobnicate 1", `x.txt:2: unknown command "frobnicate"`},
		{"sleep 1s", "scripts do not sleep"},
		{"kill", "kill: takes 1 argument(s), got 0"},
		{"kill 1 2", "takes 1 argument(s), got 2"},
		{"produce t/0 v1 colour=red", "unknown option colour="},
		{"heal -> ok", `takes no "-> ..."`},
		{"expect nothing t/0", `unknown command "expect"`},
		{"produce t/0 v key=a key=b", "key= given twice"},
		{"wait leader t/0 within 1s within=2s", "within given twice"},
	} {
		_, err := Parse("x.txt", c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q): %v, want an error containing %q", c.src, err, c.want)
		}
	}
}

// TestParseShippedScripts: every shipped scenario parses (the full run
// is testkit/scenarios' TestScenarios).
func TestParseShippedScripts(t *testing.T) {
	files, _ := globScripts(t)
	for _, f := range files {
		if _, err := ParseFile(f); err != nil {
			t.Error(err)
		}
	}
}
