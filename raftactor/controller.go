package raftactor

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/storage"
)

// ControllerGroup is the raft group of the cluster metadata.
const ControllerGroup uint64 = 0

// Topic is one topic in the cluster metadata.
type Topic struct {
	Name     string            `json:"name"`
	ID       [16]byte          `json:"id"`
	Groups   []uint64          `json:"groups"`   // raft group of each partition
	Replicas [][]int32         `json:"replicas"` // node ids hosting each partition
	Configs  map[string]string `json:"configs"`
}

// Metadata is an immutable snapshot of the cluster metadata; a change
// publishes a new one.
type Metadata struct {
	Topics         map[string]*Topic `json:"topics"`
	NextGroup      uint64            `json:"next_group"`
	NextProducerID int64             `json:"next_producer_id"`
	// Brokers are the nodes that registered: every node of a cluster once
	// it has run in it.
	Brokers map[int32]*BrokerInfo `json:"brokers,omitempty"`

	byID map[[16]byte]*Topic
}

// NewMetadata is metadata holding topics, indexed as the controller's is,
// for readers of metadata that run without a controller (fakes in tests).
func NewMetadata(topics ...*Topic) *Metadata {
	m := &Metadata{Topics: make(map[string]*Topic, len(topics))}
	for _, t := range topics {
		m.Topics[t.Name] = t
	}
	m.index()
	return m
}

// TopicByID finds a topic by its id.
func (m *Metadata) TopicByID(id [16]byte) *Topic { return m.byID[id] }

func (m *Metadata) clone() *Metadata {
	c := &Metadata{Topics: make(map[string]*Topic, len(m.Topics)+1), NextGroup: m.NextGroup, NextProducerID: m.NextProducerID}
	for k, v := range m.Topics {
		c.Topics[k] = v
	}
	if m.Brokers != nil {
		c.Brokers = make(map[int32]*BrokerInfo, len(m.Brokers)+1)
		for k, v := range m.Brokers {
			c.Brokers[k] = v
		}
	}
	return c
}

func (m *Metadata) index() {
	m.byID = make(map[[16]byte]*Topic, len(m.Topics))
	for _, t := range m.Topics {
		m.byID[t.ID] = t
	}
}

// ControllerOp names a controller command. The values are the encoded
// form stored in the controller's raft log, so they never change.
type ControllerOp string

const (
	OpCreateTopic     ControllerOp = "create_topic"
	OpDeleteTopic     ControllerOp = "delete_topic"
	OpAddPartitions   ControllerOp = "add_partitions"
	OpAllocProducerID ControllerOp = "alloc_producer_id"
	OpRegisterBroker  ControllerOp = "register_broker"
)

// BrokerInfo is a node's registration: what it advertises. A node is
// registered once it has run as a member of the cluster, which is how a
// node that comes back with an empty data dir is told from a new one.
type BrokerInfo struct {
	ID    int32  `json:"id"`
	Kafka string `json:"kafka"`
	Rack  string `json:"rack,omitempty"`
}

// RegisterBrokerCmd records (or updates) a node's registration.
func RegisterBrokerCmd(b BrokerInfo) *ControllerCmd {
	return &ControllerCmd{Op: OpRegisterBroker, Broker: &b}
}

// AllocProducerIDsCmd allocates a block of n producer ids; the result's
// ProducerID is the first.
func AllocProducerIDsCmd(n int32) *ControllerCmd {
	return &ControllerCmd{Op: OpAllocProducerID, Count: n}
}

// CreateTopicCmd creates t (its raft groups are assigned at apply).
func CreateTopicCmd(t *Topic) *ControllerCmd { return &ControllerCmd{Op: OpCreateTopic, Topic: t} }

// DeleteTopicCmd deletes the topic called name.
func DeleteTopicCmd(name string) *ControllerCmd { return &ControllerCmd{Op: OpDeleteTopic, Name: name} }

// AddPartitionsCmd grows topic name to count partitions, placed on
// replicas (one set per new partition), or where partition 0 is when nil.
func AddPartitionsCmd(name string, count int32, replicas [][]int32) *ControllerCmd {
	return &ControllerCmd{Op: OpAddPartitions, Name: name, Count: count, Replicas: replicas}
}

// ControllerCmd is a command to the controller state machine; build it
// with the constructors above.
type ControllerCmd struct {
	Op    ControllerOp `json:"op"`
	Topic *Topic       `json:"topic,omitempty"`
	Name  string       `json:"name,omitempty"`
	// add_partitions grows topic Name to Count partitions, placed on
	// Replicas when it names one set per new partition, else where
	// partition 0 is.
	Count    int32     `json:"count,omitempty"`
	Replicas [][]int32 `json:"replicas,omitempty"`
	// create_topic without replica sets: Count partitions of RF replicas
	// each, placed at apply over the cluster's nodes.
	RF int16 `json:"rf,omitempty"`
	// register_broker
	Broker *BrokerInfo `json:"broker,omitempty"`
}

// ControllerResult is what applying a ControllerCmd returns.
type ControllerResult struct {
	Topic      *Topic
	ProducerID int64
	Err        *kerr.Error
}

// Encode serializes the command for Propose.
func (c *ControllerCmd) Encode() []byte {
	b, _ := json.Marshal(c)
	return append(NewCommand(0), b...)
}

// Controller is the metadata state machine (raft group 0). Every applied
// command is written to Pebble with the applied index in one batch, so a
// restart resumes exactly after it.
type Controller struct {
	db       *storage.DB
	md       atomic.Pointer[Metadata]
	applied  uint64
	trimmed  uint64
	onChange func(old, cur *Metadata)
	nodes    []int32 // the cluster's members, where replicas are placed

	restoring  *Metadata // between Restore and Installed
	restoredAt uint64
}

// SetNodes names the cluster's members, before the controller's replica
// starts. Every node is given the same list (cluster.toml), so placement
// at apply is the same everywhere.
func (c *Controller) SetNodes(ids []int32) { c.nodes = ids }

// PlacedTopicCmd creates t with partitions partitions of rf replicas,
// placed by the controller at apply.
func PlacedTopicCmd(t *Topic, partitions int32, rf int16) *ControllerCmd {
	return &ControllerCmd{Op: OpCreateTopic, Topic: t, Count: partitions, RF: rf}
}

type controllerState struct {
	Applied  uint64    `json:"applied"`
	Metadata *Metadata `json:"metadata"`
}

var controllerKey = storage.MetaKey("controller")

// OpenController loads the metadata. onChange runs on the controller
// actor after each change (the node spawns and deletes replicas there).
func OpenController(db *storage.DB, onChange func(old, cur *Metadata)) (*Controller, uint64, error) {
	st := controllerState{Metadata: &Metadata{Topics: map[string]*Topic{}, NextGroup: 1, NextProducerID: 1000}}
	v, err := db.Get(controllerKey)
	switch {
	case err == nil:
		if err := json.Unmarshal(v, &st); err != nil {
			return nil, 0, fmt.Errorf("controller state: %w", err)
		}
		if st.Metadata.Topics == nil {
			st.Metadata.Topics = map[string]*Topic{}
		}
	case !errors.Is(err, storage.ErrNotFound):
		return nil, 0, err
	}
	st.Metadata.index()
	c := &Controller{db: db, applied: st.Applied, trimmed: st.Applied, onChange: onChange}
	c.md.Store(st.Metadata)
	return c, st.Applied, nil
}

// Metadata is the current snapshot; safe from any goroutine.
func (c *Controller) Metadata() *Metadata { return c.md.Load() }

// Apply implements StateMachine.
func (c *Controller) Apply(index, term uint64, data []byte) any {
	if index <= c.applied {
		// Applied and saved before a restart that resumed below it (see
		// NewReplica); nobody waits for it now.
		return nil
	}
	var cmd ControllerCmd
	if err := json.Unmarshal(data, &cmd); err != nil {
		return &ControllerResult{Err: kerr.InvalidRequest}
	}
	old := c.md.Load()
	cur := old.clone()
	res := &ControllerResult{}
	switch cmd.Op {
	case OpCreateTopic:
		t := cmd.Topic
		if t == nil {
			res.Err = kerr.InvalidRequest
			break
		}
		if _, ok := cur.Topics[t.Name]; ok {
			res.Err = kerr.TopicAlreadyExists
			break
		}
		nt := *t
		if len(nt.Replicas) == 0 && cmd.Count > 0 {
			// Start where the group counter is, so that consecutive
			// topics lead from different nodes.
			reps, err := Place(c.nodes, int(cmd.Count), int(cmd.RF), cur.NextGroup)
			if err != nil {
				res.Err = kerr.InvalidReplicationFactor
				break
			}
			nt.Replicas = reps
		}
		nt.Groups = make([]uint64, len(nt.Replicas))
		for i := range nt.Groups {
			nt.Groups[i] = cur.NextGroup
			cur.NextGroup++
		}
		cur.Topics[t.Name] = &nt
		res.Topic = &nt
	case OpDeleteTopic:
		t, ok := cur.Topics[cmd.Name]
		if !ok {
			res.Err = kerr.UnknownTopicOrPartition
			break
		}
		delete(cur.Topics, cmd.Name)
		res.Topic = t
	case OpAddPartitions:
		t, ok := cur.Topics[cmd.Name]
		if !ok {
			res.Err = kerr.UnknownTopicOrPartition
			break
		}
		// Decided here, at apply, so two requests racing to grow a topic
		// can't add twice.
		add := int(cmd.Count) - len(t.Groups)
		if add <= 0 {
			res.Err = kerr.InvalidPartitions
			break
		}
		reps := cmd.Replicas
		if len(reps) != add {
			reps = make([][]int32, add)
			for i := range reps {
				reps[i] = t.Replicas[0]
			}
		}
		// A new Topic value: snapshots already handed out stay as they were.
		nt := *t
		nt.Groups = append(append([]uint64(nil), t.Groups...), make([]uint64, add)...)
		nt.Replicas = append(append([][]int32(nil), t.Replicas...), reps...)
		for i := len(t.Groups); i < len(nt.Groups); i++ {
			nt.Groups[i] = cur.NextGroup
			cur.NextGroup++
		}
		cur.Topics[cmd.Name] = &nt
		res.Topic = &nt
	case OpAllocProducerID:
		res.ProducerID = cur.NextProducerID
		cur.NextProducerID += int64(max(cmd.Count, 1))
	case OpRegisterBroker:
		if cmd.Broker == nil || cmd.Broker.ID <= 0 {
			res.Err = kerr.InvalidRequest
			break
		}
		if cur.Brokers == nil {
			cur.Brokers = map[int32]*BrokerInfo{}
		}
		bi := *cmd.Broker
		cur.Brokers[bi.ID] = &bi
	default:
		res.Err = kerr.InvalidRequest
	}
	c.applied = index
	if res.Err != nil {
		return res
	}
	cur.index()
	v, _ := json.Marshal(controllerState{Applied: index, Metadata: cur})
	b := c.db.NewBatch()
	_ = b.Set(controllerKey, v, nil)
	// No sync: the raft entry is already durable; a lost write is replayed.
	if err := c.db.Commit(b, false); err != nil {
		return Fatal{fmt.Errorf("controller: %w", err)}
	}
	c.md.Store(cur)
	if c.onChange != nil {
		c.onChange(old, cur)
	}
	return res
}

// Applied implements StateMachine.
func (c *Controller) Applied() bool { return false }

// Checkpoint implements StateMachine: the state is already in Pebble, so a
// checkpoint only trims the raft log.
func (c *Controller) Checkpoint(index uint64) Checkpoint {
	if index <= c.trimmed {
		return nil
	}
	c.trimmed = index
	return trimOnly(index)
}

// Close implements StateMachine.
func (c *Controller) Close(bool) error { return nil }

type trimOnly uint64

func (t trimOnly) Index() uint64              { return uint64(t) }
func (t trimOnly) Run() error                 { return nil }
func (t trimOnly) Save(b *pebble.Batch) error { return nil }
