package clustertest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronik-actor/chronik-actor/testkit"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestMain fails the run if any goroutine outlives the tests (a node, a
// transport, a client not stopped), then removes the broker binary the
// process cluster tests built. Goroutines that end on their own soon are
// waited for, up to 5 s: protoactor's dead-letter throttle, for one,
// runs for a second after a message to a stopped actor.
func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemoveBuiltBinaries()
	if code == 0 {
		if err := wait.Until(context.Background(), 5*time.Second, func() error { return goleak.Find() }); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left behind after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
