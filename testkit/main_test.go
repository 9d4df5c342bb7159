package testkit

import (
	"os"
	"testing"
)

// TestMain removes the broker binaries the process checks built, which
// outlive any one test.
func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBuiltBinaries()
	os.Exit(code)
}
