package cluster

// View is the JSON a node's admin endpoint serves at /v1/cluster: the
// cluster as that one node sees it. `chronik-actor cluster status` reads
// every node's View and puts them together. Fields are only ever added.
type View struct {
	NodeID    int32  `json:"node_id"`
	KafkaAddr string `json:"kafka_addr"` // as advertised to clients; "" until bound
	// ControllerID is the node leading the controller (raft group 0) as
	// this node's leader table says, -1 when it knows none; Controller
	// has the detail.
	ControllerID int32          `json:"controller_id"`
	Controller   ControllerView `json:"controller"`
	Nodes        []NodeView     `json:"nodes"`
	Topics       []TopicView    `json:"topics"`
}

// NodeView is one node of cluster.toml (or the node itself, alone).
type NodeView struct {
	ID    int32  `json:"id"`
	Kafka string `json:"kafka"`           // advertised Kafka address
	Raft  string `json:"raft,omitempty"`  // peer transport; none on a single node
	Admin string `json:"admin,omitempty"` // admin HTTP address, when configured
	Rack  string `json:"rack,omitempty"`
	// Up: the node itself, or a peer this node's transport is connected
	// to.
	Up bool `json:"up"`
	// Controller: this node's leader table names it the controller's
	// leader.
	Controller bool `json:"controller"`
}

// ControllerView is the controller's raft group.
type ControllerView struct {
	Group       uint64    `json:"group"`
	Leader      int32     `json:"leader"`       // -1: none known
	LeaderEpoch int32     `json:"leader_epoch"` // the raft term of that leadership, -1 when none
	Progress    *Progress `json:"progress,omitempty"`
}

type TopicView struct {
	Name       string          `json:"name"`
	ID         string          `json:"id"` // as Kafka prints it: URL-safe base64, no padding
	Partitions []PartitionView `json:"partitions"`
}

// PartitionView is one partition. Leader and LeaderEpoch are what this
// node's leader table says (-1 when it knows no leader); the leader epoch
// is the raft term. HighWatermark and LogStartOffset are those of this
// node's replica, -1 when it hosts none (yet). Progress is present only
// on the node that leads the partition.
type PartitionView struct {
	Partition      int32     `json:"partition"`
	Group          uint64    `json:"group"`    // raft group
	Replicas       []int32   `json:"replicas"` // node ids, as placed by the controller
	Leader         int32     `json:"leader"`
	LeaderEpoch    int32     `json:"leader_epoch"`
	HighWatermark  int64     `json:"high_watermark"`
	LogStartOffset int64     `json:"log_start_offset"`
	Progress       *Progress `json:"progress,omitempty"`
}

// Progress is a raft group as its leader sees it (raftactor.Status): its
// term, commit index and last log index, and each voter's match index.
type Progress struct {
	Term      uint64            `json:"term"`
	Commit    uint64            `json:"commit"`
	LastIndex uint64            `json:"last_index"`
	Replicas  []ReplicaProgress `json:"replicas"`
}

// ReplicaProgress is one voter: Lag is the leader's last index minus
// Match, in raft entries (not records); InSync as the leader counts it
// (matched the end of its log within the in-sync window).
type ReplicaProgress struct {
	ID     int32  `json:"id"`
	Match  uint64 `json:"match"`
	Lag    uint64 `json:"lag"`
	InSync bool   `json:"in_sync"`
}
