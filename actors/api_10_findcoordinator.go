package actors

// FindCoordinator v0-v6: the coordinator of a group is the node leading
// the group's __consumer_offsets partition, which on this node means
// leading it with its log applied (or the group state would be
// incomplete). Keys are batched from v4. Transaction coordinators are not
// served yet: COORDINATOR_NOT_AVAILABLE, which clients retry.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.FindCoordinator, handleFindCoordinator) }

func handleFindCoordinator(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		resp.Coordinators = append(resp.Coordinators, c.findCoordinator(req.CoordinatorType, key))
	}
	if req.Version < 4 {
		co := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = co.ErrorCode, co.NodeID, co.Host, co.Port
		if req.Version >= 1 {
			resp.ErrorMessage = co.ErrorMessage
		}
	}
	c.respond(r, resp)
}

func (c *conn) findCoordinator(keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	co := kmsg.NewFindCoordinatorResponseCoordinator()
	co.Key = key
	var err *kerr.Error
	switch keyType {
	case 0: // group
		if h := c.b.replicas.get(groups.OffsetsTopic, c.b.groups.PartitionFor(key)); h == nil || !h.replica.LeaderReady() {
			err = kerr.CoordinatorNotAvailable
		}
	case 1: // transaction
		err = kerr.CoordinatorNotAvailable
	default: // share groups (v6) and anything newer
		err = kerr.InvalidRequest
	}
	if err != nil {
		msg := err.Message
		co.ErrorCode, co.ErrorMessage, co.NodeID, co.Host, co.Port = err.Code, &msg, -1, "", -1
		return co
	}
	co.NodeID, co.Host, co.Port = c.b.cfg.NodeID, c.b.host, c.b.port
	return co
}
