package kgosuite

import (
	"os"
	"testing"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// TestMain removes the broker binary the test built.
func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemoveBuiltBinaries()
	os.Exit(code)
}
