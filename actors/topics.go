package actors

import (
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

// newTopic builds the create command of a topic on this node (replication
// factor 1 until the cluster lands).
func (b *Broker) newTopic(name string, partitions int32, configs map[string]string) *raftactor.Topic {
	reps := make([][]int32, partitions)
	for i := range reps {
		reps[i] = []int32{b.cfg.NodeID}
	}
	return &raftactor.Topic{Name: name, ID: newTopicID(), Replicas: reps, Configs: configs}
}

// proposeController sends cmd to the controller; then runs on the
// connection's actor with the result.
func (c *conn) proposeController(ctx actor.Context, cmd *raftactor.ControllerCmd, then func(*raftactor.ControllerResult, error)) {
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
