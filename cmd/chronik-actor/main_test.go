package main

import (
	"os"
	"testing"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// TestMain removes the broker binary the cluster checks built.
func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemoveBuiltBinaries()
	os.Exit(code)
}
