package raftactor

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/chronik-actor/chronik-actor/storage"
)

// changeLog records the controller's onChange calls.
type changeLog struct{ calls [][2]*Metadata }

func (c *changeLog) onChange(old, cur *Metadata) { c.calls = append(c.calls, [2]*Metadata{old, cur}) }

func openController(t *testing.T, db *storage.DB, ch *changeLog) (*Controller, uint64) {
	t.Helper()
	var fn func(old, cur *Metadata)
	if ch != nil {
		fn = ch.onChange
	}
	c, applied, err := OpenController(db, fn)
	if err != nil {
		t.Fatal(err)
	}
	return c, applied
}

func applyCmd(t *testing.T, c *Controller, index uint64, cmd *ControllerCmd) *ControllerResult {
	t.Helper()
	v := c.Apply(index, 2, cmd.Encode()[CommandHeader:])
	r, ok := v.(*ControllerResult)
	if !ok {
		t.Fatalf("Apply(%s) returned %T %v", cmd.Op, v, v)
	}
	return r
}

func topic(name string, partitions int) *Topic {
	t := &Topic{Name: name, Configs: map[string]string{"retention.ms": "1000"}}
	t.ID[0] = byte(len(name))
	t.ID[1] = name[0]
	for i := 0; i < partitions; i++ {
		t.Replicas = append(t.Replicas, []int32{1})
	}
	return t
}

func TestControllerApply(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	defer func() { db.Close() }()
	var ch changeLog
	c, applied := openController(t, db, &ch)
	if applied != 0 {
		t.Fatalf("fresh controller applied %d", applied)
	}
	md := c.Metadata()
	if len(md.Topics) != 0 || md.NextGroup != 1 || md.NextProducerID != 1000 {
		t.Fatalf("fresh metadata %+v", md)
	}

	r := applyCmd(t, c, 2, CreateTopicCmd(topic("a", 3)))
	if r.Err != nil || !slices.Equal(r.Topic.Groups, []uint64{1, 2, 3}) {
		t.Fatalf("create a: %+v", r)
	}
	r = applyCmd(t, c, 3, CreateTopicCmd(topic("b", 2)))
	if r.Err != nil || !slices.Equal(r.Topic.Groups, []uint64{4, 5}) {
		t.Fatalf("create b: %+v", r)
	}
	before := c.Metadata()
	r = applyCmd(t, c, 4, CreateTopicCmd(topic("a", 1)))
	if r.Err != kerr.TopicAlreadyExists {
		t.Fatalf("duplicate create: %+v, want TOPIC_ALREADY_EXISTS", r)
	}
	if c.Metadata() != before || c.Metadata().NextGroup != 6 {
		t.Fatal("a refused create changed the metadata")
	}
	if len(ch.calls) != 2 {
		t.Fatalf("%d onChange calls, want 2 (none for the refused create)", len(ch.calls))
	}
	if old, cur := ch.calls[1][0], ch.calls[1][1]; old.Topics["b"] != nil || cur.Topics["b"] == nil {
		t.Fatal("onChange did not see the old and the new metadata")
	}
	if got := c.Metadata().TopicByID(topic("a", 0).ID); got == nil || got.Name != "a" {
		t.Fatalf("TopicByID(a) = %v", got)
	}

	for i, want := range []int64{1000, 1001} {
		r = applyCmd(t, c, uint64(5+i), AllocProducerIDsCmd(1))
		if r.Err != nil || r.ProducerID != want {
			t.Fatalf("alloc: %+v, want %d", r, want)
		}
	}

	r = applyCmd(t, c, 7, DeleteTopicCmd("a"))
	if r.Err != nil || r.Topic == nil || r.Topic.Name != "a" {
		t.Fatalf("delete a: %+v", r)
	}
	if c.Metadata().Topics["a"] != nil || c.Metadata().TopicByID(topic("a", 0).ID) != nil {
		t.Fatal("a still there after delete")
	}
	if before.Topics["a"] == nil {
		t.Fatal("delete changed an earlier metadata snapshot")
	}
	if r = applyCmd(t, c, 8, DeleteTopicCmd("a")); r.Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("second delete: %+v, want UNKNOWN_TOPIC_OR_PARTITION", r)
	}
	if r = applyCmd(t, c, 9, &ControllerCmd{Op: "no_such_op"}); r.Err != kerr.InvalidRequest {
		t.Fatalf("unknown op: %+v", r)
	}
	if r = applyCmd(t, c, 10, CreateTopicCmd(nil)); r.Err != kerr.InvalidRequest {
		t.Fatalf("create without a topic: %+v", r)
	}
	if r, _ := c.Apply(11, 2, []byte("{not json")).(*ControllerResult); r == nil || r.Err != kerr.InvalidRequest {
		t.Fatalf("bad json: %+v", r)
	}

	// Reopen: the state and the index of the last change come back.
	db.Close()
	db = openDB(t, dir)
	c, applied = openController(t, db, nil)
	if applied != 7 {
		t.Fatalf("applied %d after reopen, want 7 (the last change)", applied)
	}
	md = c.Metadata()
	if len(md.Topics) != 1 || md.Topics["b"] == nil || !slices.Equal(md.Topics["b"].Groups, []uint64{4, 5}) || md.Topics["b"].Configs["retention.ms"] != "1000" {
		t.Fatalf("topics after reopen: %+v", md.Topics)
	}
	if md.TopicByID(topic("b", 0).ID) == nil {
		t.Fatal("TopicByID not rebuilt after reopen")
	}
	if r = applyCmd(t, c, 12, AllocProducerIDsCmd(1)); r.ProducerID != 1002 {
		t.Fatalf("alloc after reopen: %d, want 1002", r.ProducerID)
	}
	if r = applyCmd(t, c, 13, CreateTopicCmd(topic("c", 1))); !slices.Equal(r.Topic.Groups, []uint64{6}) {
		t.Fatalf("create after reopen: groups %v, want [6]", r.Topic.Groups)
	}
}

// controllerNode runs the controller replica on a DB in dir.
type controllerNode struct {
	t   *testing.T
	dir string
	db  *storage.DB
	c   *Controller
	pn  *partitionNode // reused for its actor plumbing
}

func startController(t *testing.T, dir string) *controllerNode {
	t.Helper()
	db := openDB(t, dir)
	c, applied := openController(t, db, nil)
	r, err := NewReplica(Config{Group: ControllerGroup, NodeID: 1, Voters: []uint64{1}, DB: db, SM: c, Applied: applied, Log: quietLogger()})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	pn := &partitionNode{t: t, db: db, r: r, running: true}
	pn.sys = newSystem()
	pn.rpid, pn.results = spawnCollector(pn.sys, nil)
	pn.pid = pn.sys.Root.Spawn(r.Props())
	return &controllerNode{t: t, dir: dir, db: db, c: c, pn: pn}
}

func (n *controllerNode) do(cmd *ControllerCmd) *ControllerResult {
	n.t.Helper()
	n.pn.sys.Root.Send(n.pn.pid, &Propose{Data: cmd.Encode(), ReplyTo: n.pn.rpid, Token: cmd.Op})
	res := waitResults(n.t, n.pn.results, 1)[cmd.Op]
	if res.Err != nil {
		n.t.Fatal(res.Err)
	}
	return res.Value.(*ControllerResult)
}

func (n *controllerNode) stop() { n.pn.stop() }

func TestControllerThroughReplica(t *testing.T) {
	dir := t.TempDir()
	n := startController(t, dir)
	defer func() { n.stop() }()
	if r := n.do(CreateTopicCmd(topic("orders", 2))); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := n.do(CreateTopicCmd(topic("orders", 1))); r.Err != kerr.TopicAlreadyExists {
		t.Fatalf("duplicate: %v", r.Err)
	}
	for want := int64(1000); want < 1003; want++ {
		if r := n.do(AllocProducerIDsCmd(1)); r.ProducerID != want {
			t.Fatalf("producer id %d, want %d", r.ProducerID, want)
		}
	}
	n.stop()

	n = startController(t, dir)
	n.pn.waitLeaderReady()
	if md := n.c.Metadata(); md.Topics["orders"] == nil || md.NextProducerID != 1003 || md.NextGroup != 3 {
		t.Fatalf("metadata after restart: %+v", md)
	}
	if r := n.do(AllocProducerIDsCmd(1)); r.ProducerID != 1003 {
		t.Fatalf("producer id after restart %d, want 1003", r.ProducerID)
	}
	if r := n.do(DeleteTopicCmd("orders")); r.Err != nil {
		t.Fatal(r.Err)
	}
	n.stop()

	n = startController(t, dir)
	n.pn.waitLeaderReady()
	if md := n.c.Metadata(); len(md.Topics) != 0 || md.NextProducerID != 1004 {
		t.Fatalf("metadata after second restart: %+v", md)
	}
}

// The controller writes its state (with the applied index) when it
// applies, and the replica applies a Ready's committed entries before it
// persists the HardState carrying their commit index. A crash in between
// leaves the controller's applied index above the durable commit index;
// the restart must neither panic nor apply those entries twice.
func TestControllerAppliedAheadOfCommit(t *testing.T) {
	dir := t.TempDir()
	n := startController(t, dir)
	n.do(CreateTopicCmd(topic("x", 1)))
	n.do(AllocProducerIDsCmd(1))
	n.do(AllocProducerIDsCmd(1))
	n.stop()

	db := openDB(t, dir)
	s, err := storage.OpenLogStore(db, ControllerGroup, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs, _, _ := s.InitialState()
	_, applied := openController(t, db, nil)
	if applied != hs.GetCommit() {
		t.Fatalf("controller applied %d, commit %d", applied, hs.GetCommit())
	}
	b := db.NewBatch()
	s.SetHardState(b, &pb.HardState{Term: ptr(hs.GetTerm()), Vote: ptr(hs.GetVote()), Commit: ptr(applied - 2)})
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	db.Close()

	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("restart panicked: %v", p)
			}
		}()
		n = startController(t, dir)
	}()
	defer func() { n.stop() }()
	n.pn.waitLeaderReady()
	if r := n.do(AllocProducerIDsCmd(1)); r.ProducerID != 1002 {
		t.Fatalf("producer id %d after the restart, want 1002 (no entry applied twice)", r.ProducerID)
	}
	if md := n.c.Metadata(); md.NextGroup != 2 || len(md.Topics) != 1 {
		t.Fatalf("metadata %+v", md)
	}
}
