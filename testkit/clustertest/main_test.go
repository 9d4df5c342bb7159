package clustertest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// TestMain fails the run if any goroutine outlives the tests (a node, a
// transport, a client not stopped), then removes the broker binary the
// process cluster tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemoveBuiltBinaries()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left behind after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
