package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// EnvConfig names cluster.toml when --config is not given.
const EnvConfig = "CHRONIK_CONFIG"

// serveConfig assembles the node's configuration from, lowest first: the
// built-in default, cluster.toml, CHRONIK_* variables and flags. Flag
// parse errors are written to stderr with the usage by the flag package.
func serveConfig(args []string, getenv func(string) string, stderr io.Writer) (cluster.Config, error) {
	fs := flag.NewFlagSet("chronik-actor serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath = fs.String("config", "", "cluster.toml to read (default $"+EnvConfig+")")
		nodeID     = fs.String("node-id", "", "this node's id among the [[nodes]] of the config")
		dataDir    = fs.String("data-dir", "", "directory for this node's data (default ./data)")
		kafkaAddr  = fs.String("kafka-addr", "", "Kafka listen address HOST:PORT (default 127.0.0.1:9092)")
		advertised = fs.String("advertised-addr", "", "address given to clients, HOST:PORT (default: the bound Kafka address)")
		adminAddr  = fs.String("admin-addr", "", "HTTP listen address HOST:PORT for /metrics, /healthz and /v1/cluster (default: none)")
		logLevel   = fs.String("log-level", "", "debug, info, warn or error (default info)")
	)
	if err := fs.Parse(args); err != nil {
		return cluster.Config{}, err
	}
	if fs.NArg() > 0 {
		return cluster.Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// Only flags given on the command line override: an empty --data-dir=""
	// is taken literally and rejected by Validate rather than ignored.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg := cluster.Default()
	path := *configPath
	if !set["config"] {
		path = getenv(EnvConfig)
	}
	if path != "" {
		if err := cluster.LoadFile(path, &cfg); err != nil {
			return cluster.Config{}, err
		}
	}
	// The node id decides which [[nodes]] entry supplies the address and
	// directory, and those must stay below the environment's and the
	// flags'. So --node-id is settled first, and hides CHRONIK_NODE_ID.
	env := getenv
	if set["node-id"] {
		id, err := cluster.ParseNodeID(*nodeID)
		if err != nil {
			return cluster.Config{}, fmt.Errorf("--node-id: %w", err)
		}
		cfg.NodeID = id
		cfg.ApplyNode()
		env = func(k string) string {
			if k == cluster.EnvNodeID {
				return ""
			}
			return getenv(k)
		}
	}
	if err := cluster.ApplyEnv(&cfg, env); err != nil {
		return cluster.Config{}, err
	}
	if set["data-dir"] {
		cfg.DataDir = *dataDir
	}
	if set["kafka-addr"] {
		if err := cluster.CheckListenAddr(*kafkaAddr); err != nil {
			return cluster.Config{}, fmt.Errorf("--kafka-addr: %w", err)
		}
		cfg.KafkaAddr = *kafkaAddr
	}
	if set["advertised-addr"] {
		if err := cluster.CheckAddr(*advertised); err != nil {
			return cluster.Config{}, fmt.Errorf("--advertised-addr: %w", err)
		}
		cfg.AdvertisedAddr = *advertised
	}
	if set["admin-addr"] {
		// --admin-addr "" turns off an admin listener named by the file
		// or the environment.
		if *adminAddr != "" {
			if err := cluster.CheckListenAddr(*adminAddr); err != nil {
				return cluster.Config{}, fmt.Errorf("--admin-addr: %w", err)
			}
		}
		cfg.AdminAddr = *adminAddr
	}
	if set["log-level"] {
		if _, err := cluster.ParseLogLevel(*logLevel); err != nil {
			return cluster.Config{}, fmt.Errorf("--log-level: %w", err)
		}
		cfg.LogLevel = *logLevel
	}
	if err := cfg.Validate(); err != nil {
		return cluster.Config{}, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}
