package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const sample = `node_id = 2                  # picks the second entry
[cluster]
replication_factor = 3
partitions = 3
auto_create_topics = false
segment_bytes = 1048576
flush_interval = "250ms"

[[nodes]]
id = 1
kafka = "127.0.0.1:9092"
raft  = "127.0.0.1:5001"
admin = "127.0.0.1:8081"
rack = "r1"
data_dir = "data/node1"

[[nodes]]
id = 2
kafka = "127.0.0.1:9093"
raft  = "127.0.0.1:5002"
rack = "r2"
data_dir = "data/node2"

[[nodes]]
id = 3
kafka = "127.0.0.1:9094"
raft  = "127.0.0.1:5003"
`

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFile(t *testing.T) {
	cfg := Default()
	if err := LoadFile(writeFile(t, sample), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.NodeID != 2 || cfg.KafkaAddr != "127.0.0.1:9093" || cfg.DataDir != "data/node2" {
		t.Errorf("node 2 not applied: id %d kafka %q dir %q", cfg.NodeID, cfg.KafkaAddr, cfg.DataDir)
	}
	if cfg.DefaultReplicationFactor != 3 || cfg.DefaultPartitions != 3 || cfg.AutoCreateTopics {
		t.Errorf("cluster section not applied: %+v", cfg)
	}
	if cfg.SegmentBytes != 1<<20 || cfg.FlushInterval != 250*time.Millisecond {
		t.Errorf("segment_bytes/flush_interval not applied: %d %v", cfg.SegmentBytes, cfg.FlushInterval)
	}
	if cfg.RaftAddr != "127.0.0.1:5002" || cfg.Rack != "r2" {
		t.Errorf("node 2's raft/rack not applied: %q %q", cfg.RaftAddr, cfg.Rack)
	}
	if len(cfg.Nodes) != 3 || cfg.Nodes[0].Admin != "127.0.0.1:8081" || cfg.Nodes[2].DataDir != "" ||
		cfg.Nodes[0].Rack != "r1" || cfg.Nodes[2].Rack != "" || cfg.Nodes[2].Raft != "127.0.0.1:5003" {
		t.Errorf("nodes: %+v", cfg.Nodes)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// [testing] faults turns the admin faults endpoint on; without it, it
// stays off.
func TestLoadFileTestingFaults(t *testing.T) {
	cfg := Default()
	if err := LoadFile(writeFile(t, sample), &cfg); err != nil || cfg.TestFaults {
		t.Fatalf("without [testing]: TestFaults %v, err %v", cfg.TestFaults, err)
	}
	if err := LoadFile(writeFile(t, sample+"\n[testing]\nfaults = true\n"), &cfg); err != nil || !cfg.TestFaults {
		t.Fatalf("[testing] faults = true: TestFaults %v, err %v", cfg.TestFaults, err)
	}
}

func TestLoadFileKeepsUnsetKeys(t *testing.T) {
	cfg := Default()
	cfg.LogLevel = "debug"
	if err := LoadFile(writeFile(t, "[cluster]\npartitions = 6\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.LogLevel = "debug"
	want.DefaultPartitions = 6
	if cfg.NodeID != want.NodeID || cfg.KafkaAddr != want.KafkaAddr || cfg.LogLevel != "debug" ||
		cfg.DefaultPartitions != 6 || cfg.DefaultReplicationFactor != 1 || cfg.Nodes != nil {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
}

func TestLoadFileInlineNodes(t *testing.T) {
	cfg := Default()
	doc := "nodes = [\n  {id = 1, kafka = \"h:1\", raft = \"h:2\"},\n  {id = 2, kafka = \"h\", raft = \"h:3\"},\n]\n"
	err := LoadFile(writeFile(t, doc), &cfg)
	var fe *FileError
	if !errors.As(err, &fe) || fe.Line != 3 || fe.Key != "nodes[1].kafka" {
		t.Fatalf("got %v, want line 3 key nodes[1].kafka", err)
	}
}

// TestLoadFileErrors checks that every kind of mistake is reported with the
// file, the line and the key, and leaves the config untouched.
func TestLoadFileErrors(t *testing.T) {
	node := func(id, kafka string) string {
		return "[[nodes]]\nid = " + id + "\nkafka = " + kafka + "\nraft = \"h:5" + id + "\"\n"
	}
	tests := []struct {
		name, doc string
		line      int
		key, msg  string
	}{
		{"syntax", "node_id = 1\n[cluster\n", 2, "", "expected ']'"},
		{"unknown top", "node_id = 1\nnodeid = 2\n", 2, "nodeid", "unknown key"},
		{"unknown table", "[clusters]\npartitions = 1\n", 1, "clusters", "unknown key"},
		{"unknown in cluster", "[cluster]\npartitions = 1\nrf = 2\n", 3, "cluster.rf", "unknown key"},
		{"unknown in node", node("1", `"h:1"`) + "port = 3\n", 5, "nodes[0].port", "unknown key"},
		{"top key under table", "[cluster]\nnode_id = 1\n", 2, "cluster.node_id", "before the first [table]"},
		{"string for int", "[cluster]\npartitions = \"3\"\n", 2, "cluster.partitions", `"3" (a TOML string) is not an integer`},
		{"int for string", node("1", `"h:1"`) + node("2", "9093"), 7, "nodes[1].kafka", "is not a string"},
		{"float id", "node_id = 1.5\n", 1, "node_id", "is not an integer"},
		{"int for bool", "[cluster]\nauto_create_topics = 1\n", 2, "cluster.auto_create_topics", "is not a boolean"},
		{"string for faults", "[testing]\nfaults = \"yes\"\n", 2, "testing.faults", "is not a boolean"},
		{"unknown in testing", "[testing]\nfault = true\n", 2, "testing.fault", "unknown key"},
		{"table for nodes", "[nodes]\nid = 1\n", 1, "nodes", "write each node as [[nodes]]"},
		{"int for nodes", "nodes = 3\n", 1, "nodes", "3 (a TOML integer) is not an array of tables"},
		{"duplicate key", "[cluster]\npartitions = 1\npartitions = 2\n", 3, "cluster.partitions", "defined twice"},
		{"node_id zero", "node_id = 0\n", 1, "node_id", "ids start at 1"},
		{"node_id huge", "node_id = 4294967296\n", 1, "node_id", "out of range"},
		{"node_id absent", "node_id = 4\n" + node("1", `"h:1"`), 1, "node_id", "not among"},
		{"partitions", "[cluster]\npartitions = 0\n", 2, "cluster.partitions", "less than 1"},
		{"rf zero", "[cluster]\nreplication_factor = 0\n", 2, "cluster.replication_factor", "less than 1"},
		{"rf too big", "[cluster]\nreplication_factor = 2\n" + node("1", `"h:1"`), 2, "cluster.replication_factor", "more than the 1 nodes"},
		{"segment", "[cluster]\nsegment_bytes = -1\n", 2, "cluster.segment_bytes", "less than 1"},
		{"flush", "[cluster]\nflush_interval = \"soon\"\n", 2, "cluster.flush_interval", "not a duration"},
		{"id zero", node("0", `"h:1"`), 2, "nodes[0].id", "ids start at 1"},
		{"id missing", "[[nodes]]\nkafka = \"h:1\"\n", 1, "nodes[0].id", "missing"},
		{"id duplicate", node("1", `"h:1"`) + node("1", `"h:2"`), 6, "nodes[1].id", "also the id of nodes[0]"},
		{"no port", node("1", `"localhost"`), 3, "nodes[0].kafka", `"localhost" is not HOST:PORT`},
		{"port name", node("1", `"h:kafka"`), 3, "nodes[0].kafka", `port "kafka" is not a number`},
		{"no host", node("1", `":9092"`), 3, "nodes[0].kafka", "is not HOST:PORT"},
		{"kafka missing", "[[nodes]]\nid = 1\n", 1, "nodes[0].kafka", "missing"},
		{"raft missing", node("1", `"h:1"`) + "[[nodes]]\nid = 2\nkafka = \"h:2\"\n", 5, "nodes[1].raft", "missing"},
		{"same address", node("1", `"h:1"`) + node("2", `"h:1"`), 7, "nodes[1].kafka", "also used by nodes[0].kafka"},
		{"admin", node("1", `"h:1"`) + "admin = \"h:0\"\n", 5, "nodes[0].admin", "port 0"},

		// Unknown keys below the top level and in every table spelling.
		{"unknown subtable", "[cluster.sub]\nx = 1\n", 1, "cluster.sub", "unknown key (known here: auto_create_topics"},
		{"unknown dotted", "[cluster]\nsub.x = 1\n", 2, "cluster.sub.x", "unknown key (known here: auto_create_topics"},
		{"unknown dotted top", "cluster.rf = 1\n", 1, "cluster.rf", "unknown key (known here: auto_create_topics"},
		{"unknown node subtable", node("1", `"h:1"`) + "[nodes.extra]\nx = 1\n", 5, "nodes[0].extra", "unknown key (known here: admin, data_dir, id, kafka, rack, raft)"},
		{"unknown node array", node("1", `"h:1"`) + "[[nodes.sub]]\nx = 1\n", 5, "nodes[0].sub[0]", "unknown key (known here: admin"},
		{"unknown inline node", "nodes = [\n  {id = 1, kafka = \"h:1\", port = 3},\n]\n", 2, "nodes[0].port", "unknown key (known here: admin, data_dir, id, kafka, rack, raft)"},
		{"unknown second node", node("1", `"h:1"`) + node("2", `"h:2"`) + "zone = \"a\"\n", 9, "nodes[1].zone", "unknown key"},
		{"array for cluster", "[[cluster]]\npartitions = 1\n", 1, "cluster[0]", "is an array of tables ([[cluster]]), not a table"},
		{"string for offsets", "[cluster]\noffsets_partitions = \"8\"\n", 2, "cluster.offsets_partitions", `"8" (a TOML string) is not an integer`},
		{"int for rack", node("1", `"h:1"`) + "rack = 1\n", 5, "nodes[0].rack", "1 (a TOML integer) is not a string"},

		// A multi-node cluster.
		{"rf above nodes", "[cluster]\nreplication_factor = 3\n" + node("1", `"h:1"`) + node("2", `"h:2"`), 2, "cluster.replication_factor", "3 is more than the 2 nodes listed"},
		{"raft not host:port", "[[nodes]]\nid = 1\nkafka = \"h:1\"\nraft = \"5001\"\n", 4, "nodes[0].raft", `"5001" is not HOST:PORT`},
		{"admin not host:port", node("1", `"h:1"`) + "admin = \"h\"\n", 5, "nodes[0].admin", `"h" is not HOST:PORT`},
		{"same raft", "[[nodes]]\nid = 1\nkafka = \"h:1\"\nraft = \"h:7\"\n[[nodes]]\nid = 2\nkafka = \"h:2\"\nraft = \"h:7\"\n",
			8, "nodes[1].raft", `"h:7" is also used by nodes[0].raft`},
		{"same admin", node("1", `"h:1"`) + "admin = \"h:8\"\n" + node("2", `"h:2"`) + "admin = \"h:8\"\n",
			10, "nodes[1].admin", `"h:8" is also used by nodes[0].admin`},
		{"kafka is other raft", node("1", `"h:1"`) + node("2", `"h:51"`), 7, "nodes[1].kafka", "also used by nodes[0].raft"},
		{"same address spelled apart", node("1", `"Host:9092"`) + node("2", `"host:09092"`), 7, "nodes[1].kafka", "also used by nodes[0].kafka"},
		{"same data_dir", node("1", `"h:1"`) + "data_dir = \"data/n1\"\n" + node("2", `"h:2"`) + "data_dir = \"./data//n1/\"\n",
			10, "nodes[1].data_dir", `"./data//n1/" is also the data_dir of nodes[0]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.doc)
			cfg := Default()
			err := LoadFile(path, &cfg)
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.doc)
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("%T %v is not a *FileError", err, err)
			}
			if fe.File != path || fe.Line != tc.line || fe.Key != tc.key {
				t.Errorf("got %s:%d key %q, want line %d key %q (%v)", fe.File, fe.Line, fe.Key, tc.line, tc.key, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%q does not say %q", err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), path+":") {
				t.Errorf("%q does not start with the file name", err)
			}
			if cfg.NodeID != Default().NodeID || cfg.Nodes != nil || cfg.DefaultPartitions != Default().DefaultPartitions {
				t.Errorf("config changed on error: %+v", cfg)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	cfg := Default()
	err := loadTOML("cluster.toml", []byte("[[nodes]]\nid = 1\nkafka = \"localhost\"\n"), &cfg)
	const want = `cluster.toml:3: key nodes[0].kafka: "localhost" is not HOST:PORT`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestLoadFileMissing(t *testing.T) {
	cfg := Default()
	err := LoadFile(filepath.Join(t.TempDir(), "nope.toml"), &cfg)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.toml") {
		t.Errorf("got %v", err)
	}
}

// TestNodeIDAfterFile is the serve path: the file lists nodes without
// node_id, and the node is chosen afterwards.
func TestNodeIDAfterFile(t *testing.T) {
	cfg := Default()
	doc := strings.Replace(sample, "node_id = 2", "", 1)
	if err := LoadFile(writeFile(t, doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.KafkaAddr != "127.0.0.1:9092" || cfg.DataDir != "data/node1" || cfg.AdminAddr != "127.0.0.1:8081" ||
		cfg.RaftAddr != "127.0.0.1:5001" || cfg.Rack != "r1" {
		t.Errorf("default node 1 not applied: %q %q %q %q %q", cfg.KafkaAddr, cfg.DataDir, cfg.AdminAddr, cfg.RaftAddr, cfg.Rack)
	}
	env := map[string]string{EnvNodeID: "3", EnvDataDir: "/srv/n3"}
	if err := ApplyEnv(&cfg, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	// Node 3 has no admin address and no rack: it must not keep node 1's.
	if cfg.NodeID != 3 || cfg.KafkaAddr != "127.0.0.1:9094" || cfg.DataDir != "/srv/n3" || cfg.AdminAddr != "" ||
		cfg.RaftAddr != "127.0.0.1:5003" || cfg.Rack != "" {
		t.Errorf("env: id %d kafka %q dir %q admin %q raft %q rack %q",
			cfg.NodeID, cfg.KafkaAddr, cfg.DataDir, cfg.AdminAddr, cfg.RaftAddr, cfg.Rack)
	}
	// CHRONIK_RACK wins over the entry's rack.
	env = map[string]string{EnvNodeID: "1", EnvRack: "r9"}
	if err := ApplyEnv(&cfg, func(k string) string { return env[k] }); err != nil || cfg.Rack != "r9" || cfg.RaftAddr != "127.0.0.1:5001" {
		t.Errorf("CHRONIK_RACK: %v rack %q raft %q", err, cfg.Rack, cfg.RaftAddr)
	}
	cfg.NodeID = 7
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "node_id: 7 is not among the [[nodes]] ids [1 2 3]") ||
		!strings.Contains(err.Error(), "--node-id") {
		t.Errorf("Validate: %v", err)
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		EnvNodeID: "4", EnvDataDir: "/d", EnvKafkaAddr: "0.0.0.0:19092",
		EnvAdvertisedAddr: "broker4:19092", EnvAdminAddr: "0.0.0.0:18081", EnvLogLevel: "debug",
		EnvRack: "rack-b",
	}
	cfg := Default()
	if err := ApplyEnv(&cfg, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.NodeID != 4 || cfg.DataDir != "/d" || cfg.KafkaAddr != "0.0.0.0:19092" ||
		cfg.AdvertisedAddr != "broker4:19092" || cfg.AdminAddr != "0.0.0.0:18081" || cfg.LogLevel != "debug" ||
		cfg.Rack != "rack-b" {
		t.Errorf("got %+v", cfg)
	}

	bad := map[string]string{
		EnvNodeID:         "zero",
		EnvKafkaAddr:      "9092",
		EnvAdvertisedAddr: ":9092",
		EnvAdminAddr:      "8081",
		EnvLogLevel:       "loud",
	}
	for name, v := range bad {
		cfg := Default()
		err := ApplyEnv(&cfg, func(k string) string {
			if k == name {
				return v
			}
			return ""
		})
		if err == nil || !strings.HasPrefix(err.Error(), name+": ") {
			t.Errorf("%s=%q: got %v, want an error naming the variable", name, v, err)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	tests := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.NodeID = 0 }, "key node_id:"},
		{func(c *Config) { c.DataDir = "" }, "key data_dir:"},
		{func(c *Config) { c.KafkaAddr = "localhost" }, "key kafka_addr:"},
		{func(c *Config) { c.AdvertisedAddr = "h:0" }, "key advertised_addr:"},
		{func(c *Config) { c.AdminAddr = "localhost" }, "key admin_addr:"},
		{func(c *Config) { c.RaftAddr = "localhost" }, "key raft_addr:"},
		{func(c *Config) { c.LogLevel = "trace" }, "key log_level:"},
		{func(c *Config) { c.DefaultPartitions = -1 }, "key cluster.partitions:"},
		{func(c *Config) { c.FlushInterval = 0 }, "key cluster.flush_interval:"},
	}
	for _, tc := range tests {
		c := Default()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	c := Default()
	c.KafkaAddr = ":0" // any interface, any port: tests and the embedded bench broker
	if err := c.Validate(); err != nil {
		t.Errorf(":0: %v", err)
	}
}

// TestOffsetsSettings reads Kafka's offsets.topic.num.partitions and
// offsets.retention.minutes from [cluster], and names a bad one.
func TestOffsetsSettings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(path, []byte("[cluster]\noffsets_partitions = 8\noffsets_retention_minutes = 60\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	if err := LoadFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OffsetsPartitions != 8 || cfg.OffsetsRetention != time.Hour {
		t.Fatalf("offsets settings: %d %v", cfg.OffsetsPartitions, cfg.OffsetsRetention)
	}
	if err := os.WriteFile(path, []byte("[cluster]\n\noffsets_partitions = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = Default()
	err := LoadFile(path, &cfg)
	if err == nil || !strings.Contains(err.Error(), ":3: key cluster.offsets_partitions") {
		t.Fatalf("offsets_partitions = 0: %v", err)
	}
}

// TestStorageMinFreeBytes reads the free-space floor from [cluster], and
// names a value of the wrong type.
func TestStorageMinFreeBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(path, []byte("[cluster]\nstorage_min_free_bytes = 1048576\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	if err := LoadFile(path, &cfg); err != nil || cfg.MinFreeDiskBytes != 1<<20 {
		t.Fatalf("storage_min_free_bytes: %d, %v", cfg.MinFreeDiskBytes, err)
	}
	if err := os.WriteFile(path, []byte("[cluster]\nstorage_min_free_bytes = \"1G\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = Default()
	if err := LoadFile(path, &cfg); err == nil || !strings.Contains(err.Error(), ":2: key cluster.storage_min_free_bytes") {
		t.Fatalf("a string floor: %v", err)
	}
}

// TestRequestLimits reads the request budget and the connection timeouts
// from [cluster], and names a bad one.
func TestRequestLimits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster.toml")
	doc := "[cluster]\nrequest_memory_bytes = 1048576\nconnections_max_idle = \"2m\"\nrequest_frame_timeout = \"5s\"\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	if err := LoadFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.RequestMemoryBytes != 1<<20 || cfg.ConnectionsMaxIdle != 2*time.Minute || cfg.RequestFrameTimeout != 5*time.Second {
		t.Fatalf("request limits: %d %v %v", cfg.RequestMemoryBytes, cfg.ConnectionsMaxIdle, cfg.RequestFrameTimeout)
	}
	for key, doc := range map[string]string{
		"cluster.request_memory_bytes":  "[cluster]\nrequest_memory_bytes = 0\n",
		"cluster.connections_max_idle":  "[cluster]\nconnections_max_idle = \"soon\"\n",
		"cluster.request_frame_timeout": "[cluster]\nrequest_frame_timeout = \"-1s\"\n",
	} {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := Default()
		if err := LoadFile(path, &cfg); err == nil || !strings.Contains(err.Error(), ":2: key "+key) {
			t.Errorf("%s: %v", key, err)
		}
	}
}

// TestDataDirResolved compares data directories as the nodes will open
// them: a relative one against the working directory.
func TestDataDirResolved(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(wd, "data", "n1")
	doc := "[[nodes]]\nid = 1\nkafka = \"h:1\"\nraft = \"h:2\"\ndata_dir = \"data/n1\"\n" +
		"[[nodes]]\nid = 2\nkafka = \"h:3\"\nraft = \"h:4\"\ndata_dir = " + strconv.Quote(abs) + "\n"
	path := writeFile(t, doc)
	cfg := Default()
	err = LoadFile(path, &cfg)
	want := path + ":10: key nodes[1].data_dir: " + strconv.Quote(abs) + " is also the data_dir of nodes[0]"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want %s", err, want)
	}

	// Nodes that leave data_dir out each use their machine's default or
	// --data-dir; they are not taken to share one.
	doc = "[[nodes]]\nid = 1\nkafka = \"a:1\"\nraft = \"a:2\"\n[[nodes]]\nid = 2\nkafka = \"b:1\"\nraft = \"b:2\"\n"
	cfg = Default()
	if err := LoadFile(writeFile(t, doc), &cfg); err != nil {
		t.Errorf("nodes without data_dir: %v", err)
	}
}

// TestOneNodeFile: a single [[nodes]] entry needs no raft address, and the
// single-node default is what it was.
func TestOneNodeFile(t *testing.T) {
	cfg := Default()
	doc := "[[nodes]]\nid = 1\nkafka = \"127.0.0.1:19092\"\ndata_dir = \"d\"\n"
	if err := LoadFile(writeFile(t, doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.KafkaAddr != "127.0.0.1:19092" || cfg.DataDir != "d" || cfg.RaftAddr != "" || cfg.Rack != "" || len(cfg.Nodes) != 1 {
		t.Errorf("one node: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	d := Default()
	if d.NodeID != 1 || d.DataDir != "./data" || d.KafkaAddr != "127.0.0.1:9092" || d.AdminAddr != "" ||
		d.RaftAddr != "" || d.Rack != "" || d.Nodes != nil || d.DefaultReplicationFactor != 1 || d.DefaultPartitions != 1 {
		t.Errorf("default changed: %+v", d)
	}
}

// TestSchemaMatchesTags keeps the error wording's key list in step with
// the keys the decoder accepts.
func TestSchemaMatchesTags(t *testing.T) {
	for table, typ := range map[string]reflect.Type{
		"":        reflect.TypeOf(fileDoc{}),
		"cluster": reflect.TypeOf(fileCluster{}),
		"nodes":   reflect.TypeOf(fileNode{}),
	} {
		tags := map[string]bool{}
		for i := 0; i < typ.NumField(); i++ {
			tags[typ.Field(i).Tag.Get("toml")] = true
		}
		for k := range schema[table] {
			if !tags[k] {
				t.Errorf("schema[%q] has %q, which %v does not decode", table, k, typ)
			}
		}
		for k := range tags {
			if _, ok := schema[table][k]; !ok {
				t.Errorf("%v decodes %q, which schema[%q] lacks", typ, k, table)
			}
		}
	}
}

// TestTransactionSettings reads __transaction_state's partition count and
// the transaction timeout cap from [cluster], and names a bad one.
func TestTransactionSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster.toml")
	doc := "[cluster]\ntransaction_partitions = 5\ntransaction_max_timeout = \"1m\"\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	if err := LoadFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.TransactionPartitions != 5 || cfg.TransactionMaxTimeout != time.Minute {
		t.Fatalf("transaction settings: %d %v", cfg.TransactionPartitions, cfg.TransactionMaxTimeout)
	}
	for key, doc := range map[string]string{
		"cluster.transaction_partitions":  "[cluster]\ntransaction_partitions = 0\n",
		"cluster.transaction_max_timeout": "[cluster]\ntransaction_max_timeout = \"long\"\n",
	} {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := Default()
		if err := LoadFile(path, &cfg); err == nil || !strings.Contains(err.Error(), ":2: key "+key) {
			t.Errorf("%s: %v", key, err)
		}
	}
}
