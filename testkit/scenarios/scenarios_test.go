// Package scenarios holds the shipped scenario scripts (*.txt) and the
// test that runs each as a subtest: go test ./testkit/scenarios
// [-run TestScenarios/NAME] [-scenario.seed N].
package scenarios

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronik-actor/chronik-actor/testkit"
	"github.com/chronik-actor/chronik-actor/testkit/scenario"
)

var seed = flag.Int64("scenario.seed", 0, "replay every scenario with this seed (0: each picks its own, or "+scenario.SeedEnv+")")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	testkit.RemoveBuiltBinaries()
	os.Exit(code)
}

// TestScenarios runs every scenario script of this directory, in
// parallel with each other (each has its own cluster).
func TestScenarios(t *testing.T) {
	testkit.SkipUnlessChronik(t, "scenarios drive chronik-actor clusters")
	files, err := filepath.Glob("*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario scripts (%v)", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(f, ".txt"), func(t *testing.T) {
			t.Parallel()
			s, err := scenario.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			scenario.Run(t, s, scenario.Options{Seed: *seed, HasSeed: *seed != 0})
		})
	}
}

// A copy of a shipped scenario with one expectation made wrong fails, and
// the failure names the file, the line and the seed.
func TestWrongExpectationFails(t *testing.T) {
	testkit.SkipUnlessChronik(t, "scenarios drive chronik-actor clusters")
	src, err := os.ReadFile("replication.txt")
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(string(src), "expect hwm t/0 = 5 on all", "expect hwm t/0 = 6 on all within 1s", 1)
	if wrong == string(src) {
		t.Fatal("replication.txt no longer has the line this test changes")
	}
	path := filepath.Join(t.TempDir(), "replication-wrong.txt")
	if err := os.WriteFile(path, []byte(wrong), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := scenario.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rec := scenario.NewRecorder(s.Name, &out)
	if scenario.RunRecorded(rec, func(tb testing.TB) { scenario.Run(tb, s, scenario.Options{Seed: 5, HasSeed: true}) }) {
		t.Fatal("the wrong expectation passed")
	}
	msg := strings.Join(rec.Errors(), "\n")
	for _, want := range []string{"replication-wrong.txt:9: expect hwm t/0 = 6 on all", "seed:     5"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure lacks %q:\n%s", want, msg)
		}
	}
}
