package cluster

import "time"

// The transport's fault hook: tests decide, item by item, what the
// network between nodes does with what a node sends (lose it, hold it),
// on the sending side, so that one hook per node simulates the whole
// network. It is never set from a file: in-process test clusters set
// Config.Network, and a node run with [testing] faults = true takes its
// settings from the admin endpoint (Faults).

// ItemKind is the kind of an outbound item, as a NetFault sees it.
type ItemKind uint8

// The kinds of outbound items.
const (
	KindRaft      ItemKind = iota + 1 // a raft message of one group
	KindSnapshot                      // a snapshot stream (its MsgSnap and body)
	KindCall                          // a call to a peer (a forwarded controller command, the "registered?" probe)
	KindReply                         // the reply to a peer's call
	KindLeader                        // a leader announcement
	KindQuiesce                       // a quiesce notice
	KindKeepalive                     // the empty frame an idle sender writes, by which the peer knows this node is up
)

var kindNames = [...]string{"", "raft", "snapshot", "call", "reply", "leader", "quiesce", "keepalive"}

func (k ItemKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "unknown"
}

// Outbound is one item a node's transport is about to send a peer.
type Outbound struct {
	From, To uint64
	Kind     ItemKind
	// Group is the raft group of a raft message, snapshot, announcement
	// or quiesce notice (0 is the controller's); 0 for the other kinds.
	Group uint64
	// Type is the raft message type's name ("MsgApp", "MsgHeartbeat";
	// "MsgSnap" for a snapshot), empty for the other kinds.
	Type string
}

// Fate is what the network does with one outbound item.
type Fate struct {
	// Drop loses the item silently, as a network that drops packets
	// would: nobody is told (raft retransmits; a call times out). A
	// dropped snapshot fails its stream, as its dial would.
	Drop bool
	// Delay holds the item this long before it is queued for the peer.
	// The items bound for one peer stay in order: one held back holds
	// back those behind it. Keepalives are never held, only dropped.
	Delay time.Duration
}

// NetFault decides the fate of each item a node's transport sends a
// peer. It runs on the sender's goroutines (replicas, the transport's
// own) and must not block.
type NetFault func(Outbound) Fate
