package actors

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/actors/groups"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// ensureOffsetsTopic creates __consumer_offsets when the cluster has none.
// The broker does it, not the group coordinator: creating topics is the
// controller's business, and the coordinator only reads the metadata.
func (b *Broker) ensureOffsetsTopic() error {
	if b.controller.Metadata().Topics[groups.OffsetsTopic] != nil {
		return nil
	}
	t := newTopic(groups.OffsetsTopic, map[string]string{"cleanup.policy": "compact"})
	// Kafka's offsets.topic.replication.factor is 3, capped here by the
	// cluster's size so that a smaller cluster still has its groups.
	rf := int16(min(3, len(b.nodeIDs())))
	cr, err := b.callController(raftactor.PlacedTopicCmd(t, b.cfg.OffsetsPartitions, rf), 30*time.Second)
	if err != nil {
		return fmt.Errorf("create %s: %w", groups.OffsetsTopic, err)
	}
	// Another node, or an earlier start, may have created it first.
	if cr.Err != nil && !errors.Is(cr.Err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create %s: %v", groups.OffsetsTopic, cr.Err)
	}
	return nil
}
