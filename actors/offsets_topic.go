package actors

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
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
	t := b.newTopic(groups.OffsetsTopic, b.cfg.OffsetsPartitions, map[string]string{"cleanup.policy": "compact"})
	f := actor.NewFuture(b.sys, 30*time.Second)
	b.sys.Root.Send(b.controllerPID, &raftactor.Propose{
		Data:    raftactor.CreateTopicCmd(t).Encode(),
		ReplyTo: f.PID(),
	})
	v, err := f.Result()
	if err != nil {
		return fmt.Errorf("create %s: %w", groups.OffsetsTopic, err)
	}
	res := v.(*raftactor.Result)
	if res.Err != nil {
		return fmt.Errorf("create %s: %w", groups.OffsetsTopic, res.Err)
	}
	// Another node (or an earlier start) may have created it first.
	// An earlier start may have created it already.
	if cr := res.Value.(*raftactor.ControllerResult); cr.Err != nil && !errors.Is(cr.Err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create %s: %v", groups.OffsetsTopic, cr.Err)
	}
	return nil
}
