package actors

// FindCoordinator v0-v6: the coordinator of a group is the node leading
// the group's __consumer_offsets partition, which on this node means
// leading it with its log applied (or the group state would be
// incomplete). Keys are batched from v4. A transactional id's coordinator
// is the leader of its __transaction_state partition, found the same way;
// the first such request creates that topic (COORDINATOR_NOT_AVAILABLE,
// which clients retry, until it is led).

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
		node, ok := c.b.coordinatorOf(key)
		if !ok {
			err = kerr.CoordinatorNotAvailable
			break
		}
		co.NodeID = node
		co.Host, co.Port, _ = c.b.brokerAddr(node)
	case 1: // transaction
		if txnIDError(key) != nil {
			err = kerr.InvalidRequest
			break
		}
		node, ok := c.b.txnCoordinatorOf(key)
		if !c.b.ensureTxnTopic() || !ok {
			err = kerr.CoordinatorNotAvailable
			break
		}
		co.NodeID = node
		co.Host, co.Port, _ = c.b.brokerAddr(node)
	default: // share groups (v6) and anything newer
		err = kerr.InvalidRequest
	}
	if err != nil {
		msg := err.Message
		co.ErrorCode, co.ErrorMessage, co.NodeID, co.Host, co.Port = err.Code, &msg, -1, "", -1
		return co
	}
	return co
}

// coordinatorOf is the node coordinating group: the ready leader of its
// __consumer_offsets partition, here or as the leader table names it.
func (b *Broker) coordinatorOf(group string) (int32, bool) {
	p := b.groups.PartitionFor(group)
	if h := b.replicas.get(groups.OffsetsTopic, p); h != nil && h.replica.LeaderReady() {
		return b.cfg.NodeID, true
	}
	t := b.controller.Metadata().Topics[groups.OffsetsTopic]
	if t == nil || int(p) >= len(t.Groups) {
		return -1, false
	}
	id, _ := b.peers.leaderOf(t.Groups[p])
	if id < 0 || id == b.cfg.NodeID {
		return -1, false
	}
	_, _, ok := b.brokerAddr(id)
	return id, ok
}
