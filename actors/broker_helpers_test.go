package actors

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// startTestBroker runs a node on a free port and a temp dir.
func startTestBroker(t testing.TB, dir string) *Broker {
	t.Helper()
	cfg := cluster.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.KafkaAddr = "127.0.0.1:0"
	b, err := StartBroker(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	return b
}
