package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/chronik-actor/chronik-actor/actors"
	"github.com/chronik-actor/chronik-actor/cluster"
)

// startEmbedded runs a single-node broker in this process, on a free port
// of 127.0.0.1 and a fresh data directory that stop removes. It is apart
// from bench.go because it is the only part of the bench that needs the
// broker package.
func startEmbedded(stderr io.Writer) (addr string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "chronik-bench-")
	if err != nil {
		return "", nil, err
	}
	cfg := cluster.Default()
	cfg.DataDir = dir
	cfg.KafkaAddr = "127.0.0.1:0"
	// Warnings only: the broker's info lines would interleave with the
	// bench's own output.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := actors.StartBroker(cfg, log)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	return b.Addr(), func() {
		if err := b.Close(); err != nil {
			log.Warn("embedded broker close", "err", err)
		}
		_ = os.RemoveAll(dir)
	}, nil
}
