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
