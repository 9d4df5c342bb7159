package actors

// Metadata v0-v12: brokers, the controller, and topics with their
// partitions and topic ids. Unknown topics are created when the client
// allows it (v4+ AllowAutoTopicCreation; always before v4) and the broker
// is configured to.

import (
	"sort"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

func init() { register(kmsg.Metadata, handleMetadata) }

func handleMetadata(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.MetadataRequest)
	md := c.b.controller.Metadata()

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	var names []string
	var unknownIDs [][16]byte
	if all {
		for n := range md.Topics {
			names = append(names, n)
		}
		sort.Strings(names)
	} else {
		for _, t := range req.Topics {
			switch {
			case t.Topic != nil:
				names = append(names, *t.Topic)
			case t.TopicID != [16]byte{}:
				if tp := md.TopicByID(t.TopicID); tp != nil {
					names = append(names, tp.Name)
				} else {
					unknownIDs = append(unknownIDs, t.TopicID)
				}
			}
		}
	}

	allowAuto := c.b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	g := newGather(func() { c.respond(r, c.metadataResponse(req, names, unknownIDs)) })
	if allowAuto && !all {
		for _, n := range names {
			if md.Topics[n] != nil || validTopicName(n) != nil {
				continue
			}
			g.add()
			t := newTopic(n, map[string]string{})
			c.proposeController(ctx, raftactor.PlacedTopicCmd(t, c.b.cfg.DefaultPartitions, c.b.defaultRF()),
				func(*raftactor.ControllerResult, error) {
					// Created, or lost a race with another creator: either
					// way the response reads the metadata afresh.
					g.done()
				})
		}
	}
	g.done()
}

func (c *conn) metadataResponse(req *kmsg.MetadataRequest, names []string, unknownIDs [][16]byte) *kmsg.MetadataResponse {
	md := c.b.controller.Metadata()
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	ids := c.b.nodeIDs()
	live := 0
	for _, id := range ids {
		if c.b.live(id) {
			live++
		}
	}
	// A node that sees no majority up is the suspect one (cut off, say):
	// it lists every node, or a client that asked it first would know of
	// no other broker and ask it alone for as long as the cut lasts.
	everyone := 2*live <= len(ids)
	for _, id := range ids {
		// Otherwise live brokers only: a client told of a dead one would
		// try it for every partition it led until the next refresh.
		host, port, ok := c.b.brokerAddr(id)
		if !ok || (!everyone && !c.b.live(id)) {
			continue
		}
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = id, host, port, c.b.rackOf(id)
		resp.Brokers = append(resp.Brokers, b)
	}
	cid := clusterID
	resp.ClusterID = &cid
	resp.ControllerID = c.b.controllerID()
	resp.AuthorizedOperations = -2147483648
	for _, n := range names {
		rt := kmsg.NewMetadataResponseTopic()
		name := n
		rt.Topic = &name
		rt.AuthorizedOperations = -2147483648
		t := md.Topics[n]
		switch {
		case t != nil:
			rt.TopicID = t.ID
			rt.IsInternal = internalTopic(t.Name)
			for i := range t.Groups {
				rt.Partitions = append(rt.Partitions, c.partitionMetadata(t, int32(i)))
			}
		case validTopicName(n) != nil:
			rt.ErrorCode = kerr.InvalidTopicException.Code
		default:
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for _, id := range unknownIDs {
		rt := kmsg.NewMetadataResponseTopic()
		rt.TopicID = id
		rt.ErrorCode = kerr.UnknownTopicID.Code
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *conn) partitionMetadata(t *raftactor.Topic, i int32) kmsg.MetadataResponseTopicPartition {
	p := kmsg.NewMetadataResponseTopicPartition()
	p.Partition = i
	p.Replicas = t.Replicas[i]
	h := c.b.replicas.get(t.Name, i)
	if h != nil && h.topic.ID != t.ID {
		h = nil // a replica of an earlier topic of that name, going away
	}
	switch {
	case h != nil && len(h.replica.Voters()) == 1:
		p.Leader, p.LeaderEpoch, p.ISR = c.b.cfg.NodeID, h.replica.Term(), t.Replicas[i]
	case h != nil && h.replica.LeaderReady():
		p.Leader, p.LeaderEpoch = c.b.cfg.NodeID, h.replica.Term()
		for _, id := range h.replica.InSync() {
			p.ISR = append(p.ISR, int32(id))
		}
	default:
		p.Leader, p.LeaderEpoch = c.b.peers.leaderOf(t.Groups[i])
		if p.Leader == c.b.cfg.NodeID || (p.Leader >= 0 && !c.b.live(p.Leader)) {
			// This node's replica is not ready yet, or the named leader
			// is down: an election is due.
			p.Leader = -1
		}
		// The leader's own view of who is in sync is on the leader; from
		// here, the replicas that are up.
		for _, id := range t.Replicas[i] {
			if c.b.live(id) {
				p.ISR = append(p.ISR, id)
			}
		}
	}
	if p.Leader < 0 {
		p.ErrorCode = kerr.LeaderNotAvailable.Code
	}
	if p.ISR == nil {
		p.ISR = []int32{}
	}
	return p
}
