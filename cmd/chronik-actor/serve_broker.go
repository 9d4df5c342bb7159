package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/chronik-actor/chronik-actor/actors"
	"github.com/chronik-actor/chronik-actor/cluster"
)

// serve runs one node until SIGINT or SIGTERM. It is apart from serve.go
// because it is the only part of serving that needs the broker itself.
func serve(args []string, stderr io.Writer) int {
	cfg, err := serveConfig(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "chronik-actor: %v\n", err)
		return exitUsage
	}
	level, _ := cluster.ParseLogLevel(cfg.LogLevel) // checked by Validate
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	// Subscribe before starting, so that a signal during start-up is not
	// lost to the default handler half-way through opening the data dir.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	// Start-up runs beside the signal wait: opening a data dir can take
	// long (replaying many partitions) or never end (a disk that fails
	// under it), and a stop signal must still stop the node. Whatever was
	// opened is then left as a crash leaves it, which the next start
	// recovers from.
	type started struct {
		b   *actors.Broker
		err error
	}
	done := make(chan started, 1)
	go func() {
		b, err := actors.StartBroker(cfg, log)
		done <- started{b, err}
	}()
	var b *actors.Broker
	select {
	case s := <-done:
		if s.err != nil {
			log.Error("start failed", "err", s.err)
			return exitFailure
		}
		b = s.b
	case sig := <-sigs:
		log.Error("stopped during start-up", "signal", sig.String())
		return exitFailure
	}
	log.Info("ready",
		"kafka_addr", b.Addr(),
		"admin_addr", b.AdminAddr(),
		"node_id", cfg.NodeID,
		"data_dir", cfg.DataDir,
		"version", version,
		"startup", time.Since(processStart).Round(time.Microsecond))

	sig := <-sigs
	// A second signal falls to the default handler and kills the process,
	// the usual way out of a shutdown that hangs.
	signal.Stop(sigs)
	log.Info("shutting down", "signal", sig.String())
	if err := b.Close(); err != nil {
		log.Error("close failed", "err", err)
		return exitFailure
	}
	log.Info("stopped")
	return exitOK
}
