package actors

import (
	"time"

	"crypto/rand"
	"fmt"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

// Topic names as Kafka allows them.
const maxTopicName = 249

func validTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("topic name %q is illegal", name)
	}
	if len(name) > maxTopicName {
		return fmt.Errorf("topic name is longer than %d characters", maxTopicName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return nil
}

// defaultMaxMessageBytes is Kafka's message.max.bytes default (1 MiB + overhead).
const defaultMaxMessageBytes = 1048588

// topicConfigs are the topic configs accepted and stored, each with its
// validation.
var topicConfigs = map[string]func(string) error{
	"retention.ms":      intAtLeast(-1),
	"retention.bytes":   intAtLeast(-1),
	"max.message.bytes": intAtLeast(0),
	"segment.bytes":     intAtLeast(14),
	"cleanup.policy": func(v string) error {
		switch v {
		case "delete", "compact", "compact,delete", "delete,compact":
			return nil
		}
		return fmt.Errorf("cleanup.policy %q is not delete or compact", v)
	},
	"min.insync.replicas": intAtLeast(1),
	// Batches are stored as the producer sent them, with their own
	// timestamps: only the values that mean exactly that are accepted.
	"compression.type": func(v string) error {
		if v != "producer" {
			return fmt.Errorf("compression.type %q is not supported: batches keep the producer's codec", v)
		}
		return nil
	},
	"message.timestamp.type": func(v string) error {
		if v != "CreateTime" {
			return fmt.Errorf("message.timestamp.type %q is not supported: records keep the producer's timestamps", v)
		}
		return nil
	},
}

func intAtLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			return fmt.Errorf("%q is not an integer >= %d", v, min)
		}
		return nil
	}
}

func validateConfigs(cfg map[string]string) (*kerr.Error, string) {
	for k, v := range cfg {
		check, ok := topicConfigs[k]
		if !ok {
			return kerr.InvalidConfig, fmt.Sprintf("unknown topic config %q", k)
		}
		if err := check(v); err != nil {
			return kerr.InvalidConfig, fmt.Sprintf("%s: %v", k, err)
		}
	}
	return nil, ""
}

func maxMessageBytes(t *raftactor.Topic) int32 {
	if v, ok := t.Configs["max.message.bytes"]; ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil {
			return int32(n)
		}
	}
	return defaultMaxMessageBytes
}

func newTopicID() [16]byte {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // a version-4 UUID, as Kafka's are
	id[8] = id[8]&0x3f | 0x80
	return id
}

// newTopic is a topic to create, its replicas left to the controller's
// placement (PlacedTopicCmd) unless the request assigned them.
func newTopic(name string, configs map[string]string) *raftactor.Topic {
	return &raftactor.Topic{Name: name, ID: newTopicID(), Configs: configs}
}

// proposeController sends cmd to the controller; then runs on the
// connection's actor with the result.
func (c *conn) proposeController(ctx actor.Context, cmd *raftactor.ControllerCmd, then func(*raftactor.ControllerResult, error)) {
	if c.b.clustered() {
		// The controller's leader may be another node, and finding it
		// may wait for an election: that waiting happens off the
		// connection's goroutine, which continues when the outcome is in.
		type outcome struct {
			res *raftactor.ControllerResult
			err error
		}
		f := actor.NewFuture(ctx.ActorSystem(), controllerTimeout+5*time.Second)
		root := ctx.ActorSystem().Root
		go func() {
			res, err := c.b.callController(cmd, controllerTimeout)
			root.Send(f.PID(), outcome{res, err})
		}()
		ctx.ReenterAfter(f, func(v any, err error) {
			if err != nil {
				then(nil, err)
				return
			}
			o := v.(outcome)
			then(o.res, o.err)
		})
		return
	}
	ctx.Send(c.b.controllerPID, &raftactor.Propose{
		Data:    cmd.Encode(),
		ReplyTo: ctx.Self(),
		Then: func(v any, err error) {
			if err != nil {
				then(nil, err)
				return
			}
			then(v.(*raftactor.ControllerResult), nil)
		},
	})
}

// defaultRF is the replication factor of a topic created without one:
// the configured default, capped by the cluster's size.
func (b *Broker) defaultRF() int16 {
	return int16(min(int(b.cfg.DefaultReplicationFactor), len(b.nodeIDs())))
}

// createTopicCmd creates a topic on the replica sets assigned, or on
// partitions sets of rf replicas placed by the controller.
func (b *Broker) createTopicCmd(name string, configs map[string]string, partitions int32, rf int16, assigned [][]int32) *raftactor.ControllerCmd {
	t := newTopic(name, configs)
	if len(assigned) > 0 {
		t.Replicas = assigned
		return raftactor.CreateTopicCmd(t)
	}
	return raftactor.PlacedTopicCmd(t, partitions, rf)
}

// partitionExists reports whether the metadata names topic/partition.
func (b *Broker) partitionExists(topic string, partition int32) bool {
	t := b.controller.Metadata().Topics[topic]
	return t != nil && partition >= 0 && int(partition) < len(t.Groups)
}
