package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronik-actor/chronik-actor/cluster"
)

const twoNodes = `[cluster]
partitions = 4
[[nodes]]
id = 1
kafka = "127.0.0.1:9092"
raft = "127.0.0.1:5001"
admin = "127.0.0.1:8081"
data_dir = "data/n1"
[[nodes]]
id = 2
kafka = "127.0.0.1:9093"
raft = "127.0.0.1:5002"
data_dir = "data/n2"
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestServeConfigPrecedence: defaults < file < environment < flags.
func TestServeConfigPrecedence(t *testing.T) {
	path := writeConfig(t, twoNodes)

	cfg, err := serveConfig(nil, envOf(nil), &bytes.Buffer{})
	if err != nil || cfg.KafkaAddr != cluster.Default().KafkaAddr {
		t.Fatalf("defaults: %v %+v", err, cfg)
	}

	cfg, err = serveConfig(nil, envOf(map[string]string{EnvConfig: path}), &bytes.Buffer{})
	if err != nil || cfg.NodeID != 1 || cfg.DataDir != "data/n1" || cfg.DefaultPartitions != 4 {
		t.Fatalf("file via %s: %v %+v", EnvConfig, err, cfg)
	}

	env := envOf(map[string]string{EnvConfig: "/nonexistent", "CHRONIK_NODE_ID": "2", "CHRONIK_LOG_LEVEL": "warn"})
	cfg, err = serveConfig([]string{"--config", path}, env, &bytes.Buffer{})
	if err != nil || cfg.NodeID != 2 || cfg.KafkaAddr != "127.0.0.1:9093" || cfg.LogLevel != "warn" {
		t.Fatalf("env over file, --config over %s: %v %+v", EnvConfig, err, cfg)
	}

	env = envOf(map[string]string{"CHRONIK_NODE_ID": "2", "CHRONIK_DATA_DIR": "/env", "CHRONIK_KAFKA_ADDR": "0.0.0.0:1"})
	cfg, err = serveConfig([]string{"--config", path, "--node-id", "1", "--kafka-addr", "127.0.0.1:0",
		"--advertised-addr", "broker1:9092", "--log-level", "debug"}, env, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	// --node-id picks node 1's entry over CHRONIK_NODE_ID's, but the
	// directory from the environment still beats the file's.
	if cfg.NodeID != 1 || cfg.KafkaAddr != "127.0.0.1:0" || cfg.DataDir != "/env" ||
		cfg.AdvertisedAddr != "broker1:9092" || cfg.LogLevel != "debug" {
		t.Errorf("flags: %+v", cfg)
	}

	cfg, err = serveConfig([]string{"--config", path, "--node-id", "1"}, envOf(nil), &bytes.Buffer{})
	if err != nil || cfg.NodeID != 1 || cfg.DataDir != "data/n1" || cfg.KafkaAddr != "127.0.0.1:9092" ||
		cfg.AdminAddr != "127.0.0.1:8081" {
		t.Errorf("--node-id alone: %v %+v", err, cfg)
	}

	// admin: file < CHRONIK_ADMIN_ADDR < --admin-addr, and "" turns it off.
	adminEnv := envOf(map[string]string{"CHRONIK_ADMIN_ADDR": "127.0.0.1:18081"})
	cfg, err = serveConfig([]string{"--config", path}, adminEnv, &bytes.Buffer{})
	if err != nil || cfg.AdminAddr != "127.0.0.1:18081" {
		t.Errorf("CHRONIK_ADMIN_ADDR: %v %+v", err, cfg)
	}
	cfg, err = serveConfig([]string{"--config", path, "--admin-addr", ":0"}, adminEnv, &bytes.Buffer{})
	if err != nil || cfg.AdminAddr != ":0" {
		t.Errorf("--admin-addr: %v %+v", err, cfg)
	}
	cfg, err = serveConfig([]string{"--config", path, "--admin-addr="}, adminEnv, &bytes.Buffer{})
	if err != nil || cfg.AdminAddr != "" {
		t.Errorf("--admin-addr=: %v %+v", err, cfg)
	}
	cfg, err = serveConfig([]string{"--config", path, "--node-id", "2"}, envOf(nil), &bytes.Buffer{})
	if err != nil || cfg.AdminAddr != "" {
		t.Errorf("node 2 has no admin address: %v %+v", err, cfg)
	}

	cfg, err = serveConfig([]string{"--config", path, "--data-dir", "/flag"}, env, &bytes.Buffer{})
	if err != nil || cfg.NodeID != 2 || cfg.DataDir != "/flag" || cfg.KafkaAddr != "0.0.0.0:1" {
		t.Errorf("--data-dir: %v %+v", err, cfg)
	}
}

func TestServeConfigErrors(t *testing.T) {
	good := writeConfig(t, twoNodes)
	bad := writeConfig(t, "[cluster]\npartitions = 3\nreplicas = 2\n")
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--config", bad}, nil, bad + ":3: key cluster.replicas: unknown key"},
		{nil, map[string]string{EnvConfig: bad}, bad + ":3:"},
		{[]string{"--config", good, "--node-id", "3"}, nil, "key node_id: 3 is not among"},
		{[]string{"--node-id", "x"}, nil, "--node-id:"},
		{[]string{"--kafka-addr", "9092"}, nil, "--kafka-addr:"},
		{[]string{"--advertised-addr", "h:0"}, nil, "--advertised-addr:"},
		{[]string{"--admin-addr", "8081"}, nil, "--admin-addr:"},
		{nil, map[string]string{"CHRONIK_ADMIN_ADDR": "x"}, "CHRONIK_ADMIN_ADDR:"},
		{[]string{"--log-level", "loud"}, nil, "--log-level:"},
		{[]string{"--data-dir", ""}, nil, "key data_dir:"},
		{nil, map[string]string{"CHRONIK_KAFKA_ADDR": "x"}, "CHRONIK_KAFKA_ADDR:"},
		{[]string{"--config", filepath.Join(t.TempDir(), "missing.toml")}, nil, "missing.toml"},
	}
	for _, tc := range tests {
		_, err := serveConfig(tc.args, envOf(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// TestRunBadConfig is what an operator sees: one line and status 2.
func TestRunBadConfig(t *testing.T) {
	path := writeConfig(t, "[[nodes]]\nid = 1\nkafka = \"localhost\"\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve", "--config", path}, &stdout, &stderr); code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	want := "chronik-actor: " + path + `:3: key nodes[0].kafka: "localhost" is not HOST:PORT` + "\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}

func TestRunVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, &stdout, &stderr); code != exitOK || stdout.String() != "chronik-actor dev\n" {
		t.Errorf("exit %d, stdout %q", code, stdout.String())
	}
	if code := run([]string{"nonsense"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
}
