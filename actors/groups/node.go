package groups

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/chronik-actor/chronik-actor/cluster"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// Node is what the coordinator needs of the node it runs on: the
// controller's metadata (topics, and how many offsets partitions there
// are) and the local replicas of __consumer_offsets, through which every
// durable group change is written. The broker implements it; tests fake it.
type Node interface {
	// Metadata is the controller's current metadata; a change replaces
	// the pointer (consumer groups compare it to notice new topics).
	Metadata() *raftactor.Metadata
	// OffsetsReplica is the replica of __consumer_offsets partition p
	// hosted here, nil when there is none.
	OffsetsReplica(p int32) OffsetsReplica
	Log() *slog.Logger
}

// OffsetsReplica is one local replica of __consumer_offsets.
type OffsetsReplica interface {
	// PID takes *raftactor.Propose of produce commands and answers each
	// with a *raftactor.Result (Value a *raftactor.ProduceResult) once it
	// is applied, after the partition's store has seen the batch.
	PID() *actor.PID
	// LeaderReady: leading, with the log applied (the store is complete).
	LeaderReady() bool
	// Leads: raft names this replica the leader, ready or not.
	Leads() bool
	// Term is the leader epoch; a new one means the groups reload.
	Term() int32
}

// Config is the coordinator's share of the broker's configuration. Zero
// fields take the defaults below (Kafka's, or shorter where noted).
type Config struct {
	OffsetsPartitions int32         // offsets.topic.num.partitions, until the topic exists
	OffsetsRetention  time.Duration // offsets.retention.minutes

	InitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms, kept short
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms, lenient for tests
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms
	SweepInterval         time.Duration // offsets.retention.check.interval.ms
	// KIP-848 consumer groups (consumer*.go).
	ConsumerSessionTimeout    time.Duration // group.consumer.session.timeout.ms
	ConsumerHeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms, short: clients reconcile on heartbeats
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	// The broker passes its configured values; these are cluster's.
	if c.OffsetsPartitions == 0 {
		c.OffsetsPartitions = cluster.Default().OffsetsPartitions
	}
	def(&c.OffsetsRetention, cluster.Default().OffsetsRetention)
	def(&c.InitialRebalanceDelay, 100*time.Millisecond)
	def(&c.MinSessionTimeout, 100*time.Millisecond)
	def(&c.MaxSessionTimeout, 30*time.Minute)
	def(&c.SweepInterval, time.Minute)
	def(&c.ConsumerSessionTimeout, 45*time.Second)
	def(&c.ConsumerHeartbeatInterval, time.Second)
	return c
}
