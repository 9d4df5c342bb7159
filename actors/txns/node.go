package txns

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

// StateTopic is Kafka's internal topic of transaction metadata.
const StateTopic = "__transaction_state"

// Node is what the coordinator needs of the node it runs on. The broker
// implements it; tests fake it.
type Node interface {
	// Metadata is the controller's current metadata.
	Metadata() *raftactor.Metadata
	// StateReplica is the replica of __transaction_state partition p
	// hosted here, nil when there is none.
	StateReplica(p int32) Replica
	// NewProducerID takes a producer id never handed out before. It may
	// block (the controller allocates blocks of ids): the coordinator
	// calls it off its actors.
	NewProducerID() (int64, error)
	// WriteMarkers writes the marker ending producer pid's transaction
	// at epoch into each partition of parts, through the partitions'
	// leaders wherever they are; done gets each partition's outcome (nil:
	// written), on any goroutine.
	WriteMarkers(m Markers, done func(map[string]map[int32]*kerr.Error))
	// OffsetsPartition is the __consumer_offsets partition of group.
	OffsetsPartition(group string) int32
	Log() *slog.Logger
}

// Markers is one transaction's end, to be written into its partitions.
type Markers struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	Partitions       map[string][]int32
}

// Replica is one local replica of __transaction_state.
type Replica interface {
	// PID takes *raftactor.Propose of produce commands and answers each
	// with a *raftactor.Result once applied (the store has seen it).
	PID() *actor.PID
	// LeaderReady: leading, with the log applied (the store is complete).
	LeaderReady() bool
	// Leads: raft names this replica the leader, ready or not.
	Leads() bool
	// Term is the leader epoch: the coordinator epoch of its markers.
	Term() int32
}

// Config is the coordinator's share of the broker's configuration.
type Config struct {
	Partitions int32         // transaction.state.log.num.partitions, until the topic exists
	MaxTimeout time.Duration // transaction.max.timeout.ms
	// SweepInterval is how often timed-out transactions are aborted and
	// partitions newly led here are taken over (Kafka checks timeouts
	// every 10 s; a shorter interval also finishes an interrupted commit
	// sooner after a failover).
	SweepInterval time.Duration
	// MarkerRetry is the wait before markers that failed are sent again.
	MarkerRetry time.Duration
}

func (c Config) withDefaults() Config {
	if c.Partitions <= 0 {
		c.Partitions = 50
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = 15 * time.Minute
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Second
	}
	if c.MarkerRetry <= 0 {
		c.MarkerRetry = 100 * time.Millisecond
	}
	return c
}
