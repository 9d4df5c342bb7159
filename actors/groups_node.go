package actors

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/chronik-actor/chronik-actor/actors/groups"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// groupsNode is the broker as its group coordinator sees it (groups.Node).
type groupsNode struct{ b *Broker }

func (n groupsNode) Metadata() *raftactor.Metadata { return n.b.controller.Metadata() }

func (n groupsNode) Log() *slog.Logger { return n.b.log }

func (n groupsNode) OffsetsReplica(p int32) groups.OffsetsReplica {
	if h := n.b.replicas.get(groups.OffsetsTopic, p); h != nil {
		return h
	}
	return nil // not a nil *partitionHandle in a non-nil interface
}

// partitionHandle is a groups.OffsetsReplica when it is one of
// __consumer_offsets.
func (h *partitionHandle) PID() *actor.PID   { return h.pid }
func (h *partitionHandle) LeaderReady() bool { return h.replica.LeaderReady() }
func (h *partitionHandle) Leads() bool       { return h.replica.Leads() }
func (h *partitionHandle) Term() int32       { return h.replica.Term() }
