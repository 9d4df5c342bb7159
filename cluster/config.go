package cluster

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is everything one node needs to run: its identity, where it
// listens and keeps data, and the cluster-wide defaults for topics. It is
// built from Default, then cluster.toml, then CHRONIK_* variables, then flags.
type Config struct {
	NodeID         int32  // this node's id; ids start at 1
	DataDir        string // Pebble DB and partitions/ live here
	KafkaAddr      string // Kafka listen address, HOST:PORT (port 0 picks one)
	AdvertisedAddr string // address given to clients; empty means KafkaAddr (as bound)
	AdminAddr      string // HTTP listen address for /metrics, /healthz, /v1/cluster; empty means none
	RaftAddr       string // peer transport address HOST:PORT from this node's [[nodes]] entry; empty for the single-node default
	Rack           string // this node's rack (Kafka broker.rack, KIP-392 follower fetching); empty means none
	LogLevel       string // debug, info, warn, error

	AutoCreateTopics         bool  // create unknown topics on Metadata when the client allows it
	DefaultPartitions        int32 // partitions of an auto-created topic or a CreateTopics with -1
	DefaultReplicationFactor int16 // replication factor for -1

	SegmentBytes int64 // roll a segment file once it reaches this size

	// FlushInterval bounds how long applied data may sit in segment files
	// before they are fsynced and the raft log below them is trimmed.
	FlushInterval time.Duration

	// OffsetsPartitions is the partition count of __consumer_offsets,
	// fixed when the topic is first created (Kafka: offsets.topic.num.partitions).
	OffsetsPartitions int32
	// OffsetsRetention is how long the offsets of an empty group are kept
	// (Kafka: offsets.retention.minutes, 7 days).
	OffsetsRetention time.Duration

	// TransactionPartitions is the partition count of
	// __transaction_state, fixed when the topic is first created (Kafka:
	// transaction.state.log.num.partitions, 50).
	TransactionPartitions int32
	// TransactionMaxTimeout caps the timeout a transactional producer may
	// ask for (Kafka: transaction.max.timeout.ms, 15 minutes).
	TransactionMaxTimeout time.Duration

	// RequestMemoryBytes bounds the bytes of requests read and not yet
	// answered, node-wide (request_memory_bytes; Kafka's
	// queued.max.request.bytes); 0 means DefaultRequestMemory. A frame
	// larger than it is refused as an oversized one.
	RequestMemoryBytes int64
	// ConnectionsMaxIdle closes a connection that has nothing in flight
	// and sends nothing for this long (connections_max_idle; Kafka's
	// connections.max.idle.ms); 0 never does.
	ConnectionsMaxIdle time.Duration
	// RequestFrameTimeout closes a connection whose request frame, once
	// begun, does not arrive whole within it (request_frame_timeout); 0
	// waits forever.
	RequestFrameTimeout time.Duration

	// MinFreeDiskBytes is the free-space floor of the data dir's
	// filesystem below which produce is refused with KAFKA_STORAGE_ERROR
	// (storage_min_free_bytes); 0 means 5% of the filesystem, at most
	// 1 GiB; negative turns the check off.
	MinFreeDiskBytes int64

	Nodes []Node // the cluster's members, from cluster.toml; empty for the single-node default

	// FailStop is what the node does on a storage failure it cannot
	// recover from (reason names the failed operation). nil means log one
	// line and exit with status 70 (storage.ExitFailStop). Not read from
	// any file: embedders and tests set it. It may be called from any
	// goroutine and more than once; the failed replicas stay stopped
	// whether it returns or not.
	FailStop func(reason string, err error)

	// Network, when set, decides the fate of everything this node's
	// transport sends a peer (raft messages, calls, notices, keepalives,
	// snapshots): lose it or hold it back. It is the simulated network of
	// in-process test clusters (testkit.NewCluster), set on every node.
	// Not read from any file.
	Network NetFault

	// TestFaults turns on the admin endpoint /v1/faults, through which a
	// test sets this node's network faults at run time (cut peers, a drop
	// rate, a delay; see Faults). Off, the endpoint answers 404. From
	// cluster.toml's [testing] faults = true only: never for production.
	TestFaults bool

	// TickInterval is the raft clock: replicas tick this often (default
	// 100 ms when 0), and elections and heartbeats are counted in ticks.
	// Not read from any file: in-process tests shorten it.
	TickInterval time.Duration

	// RetainLogBytes bounds the raft log a partition's leader keeps for a
	// follower that lags; past it the follower is caught up by a snapshot
	// (default 64 MiB when 0). Not read from any file: tests shrink it.
	RetainLogBytes int
}

// DefaultRequestMemory is the default node-wide budget for request bytes.
const DefaultRequestMemory = 256 << 20

// Node is one [[nodes]] entry of cluster.toml.
type Node struct {
	ID      int32
	Kafka   string
	Raft    string
	Admin   string
	Rack    string // optional; empty means none
	DataDir string
}

// Default is the embedded single-node configuration a bare
// `chronik-actor` runs with.
func Default() Config {
	return Config{
		NodeID:                   1,
		DataDir:                  "./data",
		KafkaAddr:                "127.0.0.1:9092",
		LogLevel:                 "info",
		AutoCreateTopics:         true,
		DefaultPartitions:        1,
		DefaultReplicationFactor: 1,
		SegmentBytes:             128 << 20,
		FlushInterval:            time.Second,
		OffsetsPartitions:        16,
		OffsetsRetention:         7 * 24 * time.Hour,
		TransactionPartitions:    50,
		TransactionMaxTimeout:    15 * time.Minute,
		RequestMemoryBytes:       DefaultRequestMemory,
		ConnectionsMaxIdle:       10 * time.Minute,
		RequestFrameTimeout:      30 * time.Second,
	}
}

// ApplyNode copies the addresses, rack and data directory of the [[nodes]]
// entry whose id is c.NodeID into c, and reports whether there was one. The
// loader calls it once the file is read; callers that change NodeID later
// (environment, flags) call it again before applying their own addresses, so
// that `--node-id 2 --config cluster.toml` picks node 2's entry.
func (c *Config) ApplyNode() bool {
	for _, n := range c.Nodes {
		if n.ID != c.NodeID {
			continue
		}
		if n.Kafka != "" {
			c.KafkaAddr = n.Kafka
		}
		// Unlike the others, admin is optional per node: a node without
		// one runs no admin listener rather than keep another node's.
		c.AdminAddr = n.Admin
		// Likewise raft and rack belong to one node and are never inherited.
		c.RaftAddr = n.Raft
		c.Rack = n.Rack
		if n.DataDir != "" {
			c.DataDir = n.DataDir
		}
		return true
	}
	return false
}

// Environment variables that override cluster.toml. CHRONIK_CONFIG, which
// names the file itself, is read by the command, not here.
const (
	EnvNodeID         = "CHRONIK_NODE_ID"
	EnvDataDir        = "CHRONIK_DATA_DIR"
	EnvKafkaAddr      = "CHRONIK_KAFKA_ADDR"
	EnvAdvertisedAddr = "CHRONIK_ADVERTISED_ADDR"
	EnvAdminAddr      = "CHRONIK_ADMIN_ADDR"
	EnvLogLevel       = "CHRONIK_LOG_LEVEL"
	EnvRack           = "CHRONIK_RACK"
)

// ApplyEnv overrides cfg with the CHRONIK_* variables that are set and not
// empty. getenv is a parameter so tests need not touch the process
// environment. Errors name the variable.
func ApplyEnv(cfg *Config, getenv func(string) string) error {
	if v := getenv(EnvNodeID); v != "" {
		id, err := ParseNodeID(v)
		if err != nil {
			return fmt.Errorf("%s: %w", EnvNodeID, err)
		}
		cfg.NodeID = id
		// The node's own entry first, so that the address and directory
		// variables below still win over it.
		cfg.ApplyNode()
	}
	if v := getenv(EnvDataDir); v != "" {
		cfg.DataDir = v
	}
	if v := getenv(EnvKafkaAddr); v != "" {
		if err := CheckListenAddr(v); err != nil {
			return fmt.Errorf("%s: %w", EnvKafkaAddr, err)
		}
		cfg.KafkaAddr = v
	}
	if v := getenv(EnvAdvertisedAddr); v != "" {
		if err := CheckAddr(v); err != nil {
			return fmt.Errorf("%s: %w", EnvAdvertisedAddr, err)
		}
		cfg.AdvertisedAddr = v
	}
	if v := getenv(EnvAdminAddr); v != "" {
		if err := CheckListenAddr(v); err != nil {
			return fmt.Errorf("%s: %w", EnvAdminAddr, err)
		}
		cfg.AdminAddr = v
	}
	if v := getenv(EnvRack); v != "" {
		cfg.Rack = v
	}
	if v := getenv(EnvLogLevel); v != "" {
		if _, err := ParseLogLevel(v); err != nil {
			return fmt.Errorf("%s: %w", EnvLogLevel, err)
		}
		cfg.LogLevel = v
	}
	return nil
}

// ParseNodeID parses a node id as given on the command line or in the
// environment: a decimal number from 1 up.
func ParseNodeID(s string) (int32, error) {
	id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("%q is not a node id (a number from 1)", s)
	}
	return int32(id), nil
}

// ParseLogLevel maps the configured level name to slog's. "warning" is
// accepted because operators coming from other brokers type it.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not a log level (debug, info, warn, error)", s)
}

// CheckAddr reports whether s is HOST:PORT with a non-empty host and a
// port from 1 to 65535: an address that others dial.
func CheckAddr(s string) error {
	port, err := splitAddr(s, false)
	if err != nil {
		return err
	}
	if port == 0 {
		return fmt.Errorf("%q has port 0, which nobody can dial", s)
	}
	return nil
}

// CheckListenAddr is CheckAddr for an address to listen on: the host may be
// empty (all interfaces) and port 0 lets the kernel pick one, which tests
// and the embedded benchmark broker rely on.
func CheckListenAddr(s string) error {
	_, err := splitAddr(s, true)
	return err
}

func splitAddr(s string, emptyHost bool) (uint64, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil || (host == "" && !emptyHost) {
		return 0, fmt.Errorf("%q is not HOST:PORT", s)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not HOST:PORT: port %q is not a number from 0 to 65535", s, portStr)
	}
	return port, nil
}

// Validate checks the assembled configuration and returns its first
// problem, named by the cluster.toml key (or the setting) it concerns.
func (c Config) Validate() error {
	if ps := c.problems(); len(ps) > 0 {
		return fmt.Errorf("key %s: %w", ps[0].key, ps[0].err)
	}
	return nil
}

// problem is one invalid setting. key is its cluster.toml path
// ("cluster.partitions", "nodes[1].kafka") so that the file loader can
// turn it into a line number; settings that only come from flags or the
// environment use their flag's spelling with underscores.
type problem struct {
	key string
	err error
}

// problems lists every invalid setting, so that the file loader can skip
// those that did not come from the file and still report the rest.
func (c Config) problems() []problem {
	var ps []problem
	add := func(key string, format string, args ...any) {
		ps = append(ps, problem{key, fmt.Errorf(format, args...)})
	}
	addErr := func(key string, err error) {
		if err != nil {
			ps = append(ps, problem{key, err})
		}
	}

	if c.NodeID < 1 {
		add("node_id", "%d is not a node id (ids start at 1)", c.NodeID)
	} else if len(c.Nodes) > 0 && !c.hasNode(c.NodeID) {
		add("node_id", "%d is not among the [[nodes]] ids %v; node_id, --node-id or %s must name one of them", c.NodeID, c.nodeIDs(), EnvNodeID)
	}
	if c.DataDir == "" {
		add("data_dir", "is empty")
	}
	addErr("kafka_addr", CheckListenAddr(c.KafkaAddr))
	if c.AdvertisedAddr != "" {
		addErr("advertised_addr", CheckAddr(c.AdvertisedAddr))
	}
	if c.AdminAddr != "" {
		addErr("admin_addr", CheckListenAddr(c.AdminAddr))
	}
	if c.RaftAddr != "" {
		addErr("raft_addr", CheckListenAddr(c.RaftAddr))
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		addErr("log_level", err)
	}

	if c.OffsetsPartitions < 1 {
		add("cluster.offsets_partitions", "%d is less than 1", c.OffsetsPartitions)
	}
	if c.TransactionPartitions < 1 {
		add("cluster.transaction_partitions", "%d is less than 1", c.TransactionPartitions)
	}
	if c.TransactionMaxTimeout < time.Millisecond || c.TransactionMaxTimeout > math.MaxInt32*time.Millisecond {
		add("cluster.transaction_max_timeout", "%v is not between 1ms and %v", c.TransactionMaxTimeout, math.MaxInt32*time.Millisecond)
	}
	if c.DefaultReplicationFactor < 1 {
		add("cluster.replication_factor", "%d is less than 1", c.DefaultReplicationFactor)
	} else if len(c.Nodes) > 0 && int(c.DefaultReplicationFactor) > len(c.Nodes) {
		add("cluster.replication_factor", "%d is more than the %d nodes listed", c.DefaultReplicationFactor, len(c.Nodes))
	}
	if c.DefaultPartitions < 1 {
		add("cluster.partitions", "%d is less than 1", c.DefaultPartitions)
	}
	if c.SegmentBytes < 1 {
		add("cluster.segment_bytes", "%d is less than 1", c.SegmentBytes)
	}
	if c.FlushInterval <= 0 {
		add("cluster.flush_interval", "%v is not positive", c.FlushInterval)
	}

	// Peers and clients dial these addresses, so two nodes sharing one
	// would fail in confusing ways long after start.
	seenID := map[int32]int{}
	seenAddr := map[string]string{}
	seenDir := map[string]int{}
	for i, n := range c.Nodes {
		at := fmt.Sprintf("nodes[%d]", i)
		if n.ID < 1 {
			add(at+".id", "%d is not a node id (ids start at 1)", n.ID)
		} else if j, dup := seenID[n.ID]; dup {
			add(at+".id", "%d is also the id of nodes[%d]", n.ID, j)
		} else {
			seenID[n.ID] = i
		}
		for _, a := range []struct{ key, addr string }{
			{"kafka", n.Kafka}, {"raft", n.Raft}, {"admin", n.Admin},
		} {
			key := at + "." + a.key
			switch {
			case a.addr == "" && a.key == "kafka":
				add(key, "is missing")
			case a.addr == "" && a.key == "raft" && len(c.Nodes) > 1:
				add(key, "is missing; peers of a multi-node cluster reach each other through it")
			case a.addr == "":
			default:
				if err := CheckAddr(a.addr); err != nil {
					addErr(key, err)
				} else if other, dup := seenAddr[addrKey(a.addr)]; dup {
					add(key, "%q is also used by %s", a.addr, other)
				} else {
					seenAddr[addrKey(a.addr)] = key
				}
			}
		}
		// Nodes run side by side on one machine (tests, demos) would write
		// the same Pebble DB and segment files. A node without data_dir
		// uses the machine's default or --data-dir, so only written ones
		// are compared.
		if n.DataDir != "" {
			d := dirKey(n.DataDir)
			if j, dup := seenDir[d]; dup {
				add(at+".data_dir", "%q is also the data_dir of nodes[%d]; nodes sharing a directory would corrupt each other's data", n.DataDir, j)
			} else {
				seenDir[d] = i
			}
		}
	}
	return ps
}

// addrKey spells a HOST:PORT that CheckAddr accepted the same way however
// it was written: "H:09092" and "h:9092" are one listener.
func addrKey(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return s
	}
	return net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(p, 10))
}

// dirKey resolves a data directory as the node will open it: relative paths
// against the working directory, then cleaned, so that "data/n1",
// "./data/n1/" and its absolute spelling compare equal.
func dirKey(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

func (c Config) hasNode(id int32) bool {
	for _, n := range c.Nodes {
		if n.ID == id {
			return true
		}
	}
	return false
}

func (c Config) nodeIDs() []int32 {
	ids := make([]int32, len(c.Nodes))
	for i, n := range c.Nodes {
		ids[i] = n.ID
	}
	return ids
}
