package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// threeNodeAnswers: nodes 1 and 2 answer, node 3's endpoint refuses.
// Node 1 leads the controller and partition 0; node 2 leads partition 1;
// node 1's table still names node 3 (down) leader of partition 2, which
// nobody leads yet.
func threeNodeAnswers() []answer {
	nodes := func(self int32) []cluster.NodeView {
		out := []cluster.NodeView{
			{ID: 1, Kafka: "127.0.0.1:9092", Raft: "127.0.0.1:5001", Admin: "127.0.0.1:8081", Rack: "r1", Up: true, Controller: true},
			{ID: 2, Kafka: "127.0.0.1:9093", Raft: "127.0.0.1:5002", Admin: "127.0.0.1:8082", Rack: "r2", Up: true},
			{ID: 3, Kafka: "127.0.0.1:9094", Raft: "127.0.0.1:5003", Admin: "127.0.0.1:8083", Rack: "r3"},
		}
		return out
	}
	prog := func(term uint64, lags ...uint64) *cluster.Progress {
		p := &cluster.Progress{Term: term, Commit: 100, LastIndex: 100}
		for i, l := range lags {
			p.Replicas = append(p.Replicas, cluster.ReplicaProgress{ID: int32(i + 1), Match: 100 - l, Lag: l, InSync: l < 10})
		}
		return p
	}
	v1 := &cluster.View{NodeID: 1, ControllerID: 1,
		Controller: cluster.ControllerView{Leader: 1, LeaderEpoch: 2, Progress: prog(2, 0, 0, 40)},
		Nodes:      nodes(1),
		Topics: []cluster.TopicView{{Name: "orders", Partitions: []cluster.PartitionView{
			{Partition: 0, Group: 5, Replicas: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 3, Progress: prog(3, 0, 1, 57)},
			{Partition: 1, Group: 6, Replicas: []int32{2, 3, 1}, Leader: 2, LeaderEpoch: 4},
			{Partition: 2, Group: 7, Replicas: []int32{3, 1, 2}, Leader: 3, LeaderEpoch: 2},
		}}}}
	v2 := &cluster.View{NodeID: 2, ControllerID: 1,
		Controller: cluster.ControllerView{Leader: 1, LeaderEpoch: 2},
		Nodes:      nodes(2),
		Topics: []cluster.TopicView{{Name: "orders", Partitions: []cluster.PartitionView{
			{Partition: 0, Group: 5, Replicas: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 3},
			{Partition: 1, Group: 6, Replicas: []int32{2, 3, 1}, Leader: 2, LeaderEpoch: 4, Progress: prog(4, 2, 0, 30)},
			{Partition: 2, Group: 7, Replicas: []int32{3, 1, 2}, Leader: -1, LeaderEpoch: -1},
		}}}}
	return []answer{
		{target: target{id: 1, addr: "127.0.0.1:8081"}, view: v1},
		{target: target{id: 2, addr: "127.0.0.1:8082"}, view: v2},
		{target: target{id: 3, addr: "127.0.0.1:8083"}, err: errors.New("connection refused")},
	}
}

func TestStatusText(t *testing.T) {
	var out bytes.Buffer
	if err := printStatus(&out, buildReport(threeNodeAnswers())); err != nil {
		t.Fatal(err)
	}
	want := `NODE  STATUS  CONTROLLER  KAFKA           RAFT            ADMIN           RACK  NOTE
1     UP      leader      127.0.0.1:9092  127.0.0.1:5001  127.0.0.1:8081  r1
2     UP      -           127.0.0.1:9093  127.0.0.1:5002  127.0.0.1:8082  r2
3     DOWN    -           127.0.0.1:9094  127.0.0.1:5003  127.0.0.1:8083  r3    admin: connection refused

TOPIC   PARTITION  LEADER  TERM  REPLICAS  IN-SYNC  LAG
orders  0          1       3     1,2,3     1,2      1:0 2:1 3:57
orders  1          2       4     2,3,1     1,2      1:2 2:0 3:30
orders  2          none    -     3,1,2     -        -
`
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// The rules: a node that answers but that a majority of the answering
// nodes sees down is DOWN; one without an admin address is judged by its
// peers; --admin addresses are matched to the nodes the views list.
func TestStatusRules(t *testing.T) {
	as := threeNodeAnswers()
	// Node 1 sees node 2 down, node 2 sees node 1 down: one of two
	// answering nodes is no majority.
	as[0].view.Nodes[1].Up = false
	as[1].view.Nodes[0].Up = false
	rep := buildReport(as)
	if n := rep.Nodes[0]; !n.Up || n.Note != "seen down by 2" {
		t.Errorf("node 1: %+v", n)
	}
	if n := rep.Nodes[1]; !n.Up || n.Note != "seen down by 1" {
		t.Errorf("node 2: %+v", n)
	}
	// Node 3 answers too and also sees node 2 down (say, its raft port is
	// cut off): two of three is a majority, node 2 is DOWN although its
	// admin endpoint answers, and its claims no longer count.
	v3 := *as[1].view
	v3.NodeID = 3
	v3.Nodes = []cluster.NodeView{as[0].view.Nodes[0], as[0].view.Nodes[1], as[0].view.Nodes[2]}
	v3.Nodes[0].Up, v3.Nodes[2].Up = true, true
	v3.Topics = nil
	as[2] = answer{target: target{id: 3, addr: "127.0.0.1:8083"}, view: &v3}
	rep = buildReport(as)
	if n := rep.Nodes[1]; n.Up || n.Note != "seen down by 1,3" {
		t.Errorf("node 2 seen down by 2 of 3: %+v", n)
	}
	if p := rep.Partitions[1]; p.Leader != -1 || p.Lag != nil {
		t.Errorf("partition 1 led by a node that is DOWN: %+v", p)
	}

	// By address only: node 3's silent address becomes node 3.
	as = threeNodeAnswers()
	for i := range as {
		as[i].id = 0
	}
	rep = buildReport(as)
	if len(rep.Nodes) != 3 || rep.Nodes[2].ID != 3 || rep.Nodes[2].Up || !strings.HasPrefix(rep.Nodes[2].Note, "admin:") {
		t.Errorf("by address: %+v", rep.Nodes)
	}
	if rep.ControllerID != 1 || rep.Partitions[0].Leader != 1 || len(rep.Partitions[0].Lag) != 3 {
		t.Errorf("by address: controller %d, %+v", rep.ControllerID, rep.Partitions)
	}

	// No admin address for node 3: the views say down, so DOWN; up if
	// they say up.
	as = threeNodeAnswers()
	as[2] = answer{target: target{id: 3}}
	rep = buildReport(as)
	if n := rep.Nodes[2]; n.Up || n.Note != "no admin address; seen down by 1,2" {
		t.Errorf("no admin address, seen down: %+v", n)
	}
	for _, a := range as[:2] {
		a.view.Nodes[2].Up = true
	}
	rep = buildReport(as)
	if n := rep.Nodes[2]; !n.Up || n.Note != "no admin address" {
		t.Errorf("no admin address, seen up: %+v", n)
	}
	// ... and then node 3's stale claim on partition 2 counts.
	if p := rep.Partitions[2]; p.Leader != 3 || p.Term != 2 || p.Lag != nil {
		t.Errorf("partition 2: %+v", p)
	}
}

func TestStatusUsage(t *testing.T) {
	t.Setenv(EnvConfig, "")
	for _, args := range [][]string{
		{"cluster"},
		{"cluster", "status"},
		{"cluster", "status", "--admin", "nohost"},
		{"cluster", "status", "--admin", "127.0.0.1:1", "--config", "x.toml"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
}
