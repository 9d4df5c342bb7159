package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

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
	log := benchLogger(stderr)
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

// benchLogger logs warnings only: the broker's info lines would
// interleave with the bench's own output.
func benchLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startEmbeddedCluster runs an n-node cluster in this process: every node
// its own data directory under one temporary directory, its Kafka and raft
// listeners on loopback ports picked just before the start (every node's
// configuration lists all of them). It returns the nodes' Kafka addresses;
// stop closes every node and removes the data. A start that loses a picked
// port to another process is tried again with new ports.
func startEmbeddedCluster(stderr io.Writer, n int) (addrs []string, stop func(), err error) {
	for attempt := 1; ; attempt++ {
		addrs, stop, err = startClusterOnce(stderr, n)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return addrs, stop, err
		}
	}
}

func startClusterOnce(stderr io.Writer, n int) ([]string, func(), error) {
	dir, err := os.MkdirTemp("", "chronik-bench-cluster-")
	if err != nil {
		return nil, nil, err
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	nodes := make([]cluster.Node, n)
	addrs := make([]string, n)
	for i := range nodes {
		nodes[i] = cluster.Node{
			ID:      int32(i + 1),
			Kafka:   ports[2*i],
			Raft:    ports[2*i+1],
			DataDir: filepath.Join(dir, fmt.Sprint(i+1)),
		}
		addrs[i] = nodes[i].Kafka
	}
	// Errors only once stopping: nodes that lose their quorum as the
	// others close warn about it, which is the end of the run, not news.
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// All nodes start at once: each waits for its peers (a node with an
	// empty data dir asks them whether the cluster already exists).
	brokers := make([]*actors.Broker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, node := range nodes {
		cfg := cluster.Default()
		cfg.NodeID, cfg.Nodes = node.ID, nodes
		cfg.DefaultReplicationFactor = int16(min(n, 3))
		cfg.OffsetsPartitions = 3
		cfg.ApplyNode()
		wg.Add(1)
		go func() {
			defer wg.Done()
			brokers[i], errs[i] = actors.StartBroker(cfg, log.With("node", node.ID))
		}()
	}
	wg.Wait()
	stop := func() {
		level.Set(slog.LevelError)
		// In parallel: each node first tries to hand its leaderships to
		// the others (for up to 5 s), which cannot succeed when all of
		// them go; one after the other that would be 5 s per node.
		var wg sync.WaitGroup
		for i, b := range brokers {
			if b == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := b.Close(); err != nil {
					log.Warn("embedded node close", "node", i+1, "err", err)
				}
			}()
		}
		wg.Wait()
		_ = os.RemoveAll(dir)
	}
	if err := errors.Join(errs...); err != nil {
		stop()
		return nil, nil, err
	}
	return addrs, stop, nil
}

// freePorts picks n distinct free loopback ports, by listening on them all
// and closing them again.
func freePorts(n int) ([]string, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
