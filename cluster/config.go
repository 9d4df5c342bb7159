package cluster

import "time"

// Config is everything one node needs to run: its identity, where it
// listens and keeps data, and the cluster-wide defaults for topics. It is
// built from Default, then cluster.toml, then CHRONIK_* variables, then flags.
type Config struct {
	NodeID         int32  // this node's id; ids start at 1
	DataDir        string // Pebble DB and partitions/ live here
	KafkaAddr      string // Kafka listen address, HOST:PORT (port 0 picks one)
	AdvertisedAddr string // address given to clients; empty means KafkaAddr (as bound)
	LogLevel       string // debug, info, warn, error

	AutoCreateTopics         bool  // create unknown topics on Metadata when the client allows it
	DefaultPartitions        int32 // partitions of an auto-created topic or a CreateTopics with -1
	DefaultReplicationFactor int16 // replication factor for -1

	SegmentBytes int64 // roll a segment file once it reaches this size

	// FlushInterval bounds how long applied data may sit in segment files
	// before they are fsynced and the raft log below them is trimmed.
	FlushInterval time.Duration

	Nodes []Node // the cluster's members, from cluster.toml; empty for the single-node default
}

// Node is one [[nodes]] entry of cluster.toml.
type Node struct {
	ID      int32
	Kafka   string
	Raft    string
	Admin   string
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
	}
}
