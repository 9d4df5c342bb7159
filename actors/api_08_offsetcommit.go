package actors

// OffsetCommit v0-v9: one record per partition to the group's
// __consumer_offsets partition, answered once applied. Generation -1 with
// no member id is a simple consumer, accepted while the group has no
// members (as Kafka does); members are checked for generation and id. The
// v2-v4 retention time is ignored (offsets.retention.minutes applies, as
// in Kafka since 2.1 for clients that send the default).

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.OffsetCommit, handleOffsetCommit) }

func handleOffsetCommit(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.OffsetCommitRequest)
	c.callGroup(ctx, r, req.Group)
}
