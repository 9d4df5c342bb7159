package scenario

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors"
)

// defaultWithin bounds a step's waiting when it gives no within.
const defaultWithin = 15 * time.Second

// cluster N [processes] [retain-log=SIZE] [tick=D]
func (r *runner) cmdCluster(st *Step) {
	if r.c != nil {
		r.bad("a script starts one cluster")
	}
	n, err := strconv.Atoi(st.Args[0])
	if err != nil || n < 1 {
		r.bad("bad node count %q", st.Args[0])
	}
	sp := ClusterSpec{Nodes: n, Seed: r.seed}
	if len(st.Args) == 2 {
		if st.Args[1] != "processes" {
			r.bad("unknown cluster kind %q (only `processes`)", st.Args[1])
		}
		sp.Processes = true
	}
	if v, ok := st.KV["retain-log"]; ok {
		sp.RetainLogBytes = r.size(v)
	}
	if v, ok := st.KV["tick"]; ok {
		sp.Tick = r.duration(v)
	}
	f := r.opts.NewCluster
	if f == nil {
		f = DefaultCluster
	}
	r.c = f(r.tb, sp)
	r.t.Cleanup(r.cleanup)
}

// node NAME = leader|follower T/P: binds NAME to the partition's current
// (write-accepting) leader, or to one of its followers chosen by the
// seeded random source.
func (r *runner) cmdNode(st *Step) {
	name, eq, kind := st.Args[0], st.Args[1], st.Args[2]
	if eq != "=" {
		r.bad("want `node NAME = leader|follower T/P`")
	}
	if _, err := strconv.Atoi(name); err == nil {
		r.bad("a node name must not be a number")
	}
	topic, p := r.tp(st.Args[3])
	var leader int32
	r.eventually(r.within(st, defaultWithin), "a leader of "+st.Args[3]+" that accepts writes", func() (err error) {
		leader, err = r.confirmedLeader(topic, p)
		return err
	})
	switch kind {
	case "leader":
		r.nodes[name] = leader
	case "follower":
		fs := r.cluster().Followers(topic, p)
		fs = slices.DeleteFunc(fs, func(id int32) bool { return id == leader })
		if len(fs) == 0 {
			r.fail("a follower of "+st.Args[3], "none (leader %d)", leader)
		}
		slices.Sort(fs)
		r.nodes[name] = fs[r.rng.IntN(len(fs))]
	default:
		r.bad("unknown node kind %q (leader or follower)", kind)
	}
	r.logf("%s:%d: %s is node %d", r.script.Name, st.Line, name, r.nodes[name])
}

// confirmedLeader is the leader the cluster's Metadata names, once that
// node names itself: it leads and has applied an entry of its term, so it
// accepts writes.
func (r *runner) confirmedLeader(topic string, p int32) (int32, error) {
	l, ok := r.cluster().Leader(topic, p)
	if !ok {
		return 0, fmt.Errorf("no node names a leader of %s/%d", topic, p)
	}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := r.request(ctx, l, req)
	if err != nil {
		return 0, fmt.Errorf("leader %d named, but: %v", l, err)
	}
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		for _, rp := range t.Partitions {
			if rp.Partition == p && rp.Leader == l {
				return l, nil
			}
			if rp.Partition == p {
				return 0, fmt.Errorf("node %d is named the leader, but itself names %d", l, rp.Leader)
			}
		}
	}
	return 0, fmt.Errorf("node %d does not know %s/%d", l, topic, p)
}

// replicas are the partition's replica set as Metadata reports it.
func (r *runner) replicas(topic string, p int32) []int32 {
	out := r.cluster().Followers(topic, p)
	if l, ok := r.cluster().Leader(topic, p); ok && !slices.Contains(out, l) {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// partition 1 | 2 3, or L | others ("others": every node not named).
func (r *runner) cmdPartition(st *Step) {
	var groups [][]int32
	var cur []int32
	others := -1
	named := map[int32]bool{}
	for _, w := range st.Args {
		switch w {
		case "|":
			groups = append(groups, cur)
			cur = nil
		case "others":
			others = len(groups)
		default:
			for _, id := range r.nodeList(w) {
				if named[id] {
					r.bad("node %d named twice", id)
				}
				named[id] = true
				cur = append(cur, id)
			}
		}
	}
	groups = append(groups, cur)
	if others >= 0 {
		for _, id := range r.cluster().Nodes() {
			if !named[id] {
				groups[others] = append(groups[others], id)
			}
		}
	}
	r.cluster().Partition(groups...)
}

func (r *runner) cmdIsolate(st *Step) { r.cluster().Isolate(r.node(st.Args[0])) }
func (r *runner) cmdHeal(*Step)       { r.cluster().Heal() }

func (r *runner) cmdDrop(st *Step) {
	rate, err := strconv.ParseFloat(st.Args[0], 64)
	if err != nil || rate < 0 || rate > 1 {
		r.bad("bad drop rate %q (0 to 1)", st.Args[0])
	}
	r.cluster().Drop(rate)
}

func (r *runner) cmdDelay(st *Step) { r.cluster().Delay(r.duration(st.Args[0])) }

// kill|stop|restart|pause|resume NODE
func (r *runner) cmdLifecycle(st *Step) {
	id, c := r.node(st.Args[0]), r.cluster()
	switch st.Cmd {
	case "kill":
		c.Kill(id)
	case "stop":
		c.Stop(id)
	case "restart":
		c.Restart(id)
	case "pause":
		c.Pause(id)
	case "resume":
		c.Resume(id)
	}
	// The raw client's connections to that node are dead or stale now: a
	// request on one would fail with EOF after it was sent, which for a
	// produce cannot be told from a lost answer. A fresh client dials anew.
	if r.raw != nil {
		r.raw.Close()
		r.raw = nil
	}
}

// wait leader T/P
func (r *runner) cmdWait(st *Step) {
	if st.Args[0] != "leader" {
		r.bad("unknown wait %q (wait leader T/P)", st.Args[0])
	}
	topic, p := r.tp(st.Args[1])
	r.eventually(r.within(st, defaultWithin), "a leader of "+st.Args[1]+" that accepts writes", func() error {
		_, err := r.confirmedLeader(topic, p)
		return err
	})
}

// expect leader T/P in LIST | not NODE
func (r *runner) cmdExpectLeader(st *Step) {
	topic, p := r.tp(st.Args[1])
	nodes := r.nodeList(st.Args[3])
	var want string
	var ok func(int32) bool
	switch st.Args[2] {
	case "in":
		want = fmt.Sprintf("a leader of %s among nodes %v", st.Args[1], nodes)
		ok = func(l int32) bool { return slices.Contains(nodes, l) }
	case "not":
		want = fmt.Sprintf("a leader of %s other than node(s) %v", st.Args[1], nodes)
		ok = func(l int32) bool { return !slices.Contains(nodes, l) }
	default:
		r.bad("want `expect leader T/P in A,B` or `expect leader T/P not A`")
	}
	r.eventually(r.within(st, defaultWithin), want, func() error {
		l, err := r.confirmedLeader(topic, p)
		if err != nil {
			return err
		}
		if !ok(l) {
			return fmt.Errorf("node %d leads", l)
		}
		return nil
	})
}

// expect hwm T/P = N|>= N [on all | on NODE[,NODE]]
func (r *runner) cmdExpectHWM(st *Step) {
	topic, p := r.tp(st.Args[1])
	op := st.Args[2]
	if op != "=" && op != ">=" {
		r.bad("want `expect hwm T/P = N [on all|on NODE]` (or >= N)")
	}
	want := r.int(st.Args[3])
	on := "all"
	if len(st.Args) == 6 && st.Args[4] == "on" {
		on = st.Args[5]
	} else if len(st.Args) != 4 {
		r.bad("want `expect hwm T/P = N [on all|on NODE]`")
	}
	r.eventually(r.within(st, defaultWithin), fmt.Sprintf("high watermark %s %d on %s replica(s) of %s", op, want, on, st.Args[1]), func() error {
		nodes := r.replicas(topic, p)
		if on != "all" {
			nodes = r.nodeList(on)
		}
		var got []string
		bad := false
		for _, id := range nodes {
			hwm, err := r.highWatermark(id, topic, p)
			switch {
			case err != nil:
				got, bad = append(got, fmt.Sprintf("node %d: %v", id, errName(err))), true
			default:
				got = append(got, fmt.Sprintf("node %d: %d", id, hwm))
				bad = bad || hwm < want || (op == "=" && hwm != want)
			}
		}
		if bad || len(nodes) == 0 {
			return fmt.Errorf("%s", strings.Join(got, ", "))
		}
		return nil
	})
}

// highWatermark asks node id for its own high watermark of topic/p: a
// Fetch (v12, which any replica serves) of at most one byte.
func (r *runner) highWatermark(id int32, topic string, p int32) (int64, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 1
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p
	rp.PartitionMaxBytes = 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := r.request(ctx, id, req)
	if err != nil {
		return 0, err
	}
	fr := resp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(fr.ErrorCode); err != nil {
		return 0, err
	}
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("fetch response for %d topics", len(fr.Topics))
	}
	part := fr.Topics[0].Partitions[0]
	// A log whose start moved past 0 answers OFFSET_OUT_OF_RANGE with its
	// high watermark all the same.
	if err := kerr.ErrorForCode(part.ErrorCode); err != nil && !errors.Is(err, kerr.OffsetOutOfRange) {
		return 0, err
	}
	return part.HighWatermark, nil
}

// expect raft-trimmed T/P >= N on NODE: the node's replica has trimmed
// its raft log through index N at least (in-process clusters only: it
// asks the node itself). A follower that was behind the trimmed index
// can only catch up through a snapshot.
func (r *runner) cmdExpectTrimmed(st *Step) {
	topic, p := r.tp(st.Args[1])
	if st.Args[2] != ">=" || st.Args[4] != "on" {
		r.bad("want `expect raft-trimmed T/P >= N on NODE`")
	}
	want := uint64(r.int(st.Args[3]))
	id := r.node(st.Args[5])
	lc, ok := r.cluster().(interface{ Broker(int32) *actors.Broker })
	if !ok {
		r.bad("expect raft-trimmed needs an in-process cluster")
	}
	r.eventually(r.within(st, defaultWithin), fmt.Sprintf("node %d's raft log of %s trimmed through index %d or more", id, st.Args[1], want), func() error {
		b := lc.Broker(id)
		if b == nil {
			return fmt.Errorf("node %d is not running", id)
		}
		got, ok := b.RaftLogTrimmed(topic, p)
		if !ok {
			return fmt.Errorf("node %d hosts no replica of %s", id, st.Args[1])
		}
		if got < want {
			return fmt.Errorf("trimmed through index %d", got)
		}
		return nil
	})
}
