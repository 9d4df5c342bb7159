package groups

import (
	"fmt"
	"testing"
)

func assignTopics(sizes ...int32) map[[16]byte]assignTopic {
	out := map[[16]byte]assignTopic{}
	for i, n := range sizes {
		out[[16]byte{byte(i + 1)}] = assignTopic{name: fmt.Sprintf("t%d", i), partitions: n}
	}
	return out
}

func allSubscribed(topics map[[16]byte]assignTopic, ids ...string) []assignMember {
	var ms []assignMember
	for _, id := range ids {
		m := assignMember{id: id, topics: map[[16]byte]bool{}}
		for t := range topics {
			m.topics[t] = true
		}
		ms = append(ms, m)
	}
	return ms
}

// checkComplete fails unless every partition of topics is assigned to
// exactly one member.
func checkComplete(t *testing.T, topics map[[16]byte]assignTopic, out map[string]partSet) {
	t.Helper()
	owner := map[topicPart]string{}
	for id, s := range out {
		for tp := range s {
			if o, dup := owner[tp]; dup {
				t.Fatalf("%v assigned to %s and %s", tp, o, id)
			}
			owner[tp] = id
		}
	}
	total := 0
	for _, tt := range topics {
		total += int(tt.partitions)
	}
	if len(owner) != total {
		t.Fatalf("%d of %d partitions assigned", len(owner), total)
	}
}

func TestAssignUniformBalancedWithinOne(t *testing.T) {
	for _, c := range []struct {
		members int
		sizes   []int32
	}{{1, []int32{4}}, {2, []int32{4}}, {3, []int32{4}}, {3, []int32{7, 5}}, {5, []int32{3}}, {4, []int32{1, 1, 1, 10}}} {
		topics := assignTopics(c.sizes...)
		var ids []string
		for i := 0; i < c.members; i++ {
			ids = append(ids, fmt.Sprintf("m%d", i))
		}
		out := assignUniform(allSubscribed(topics, ids...), topics)
		checkComplete(t, topics, out)
		lo, hi := 1<<30, 0
		for _, s := range out {
			lo, hi = min(lo, len(s)), max(hi, len(s))
		}
		if hi-lo > 1 {
			t.Fatalf("%d members on %v: counts from %d to %d", c.members, c.sizes, lo, hi)
		}
	}
}

// A member joining takes partitions from the others; nobody else's
// partitions move.
func TestAssignUniformSticky(t *testing.T) {
	topics := assignTopics(6)
	first := assignUniform(allSubscribed(topics, "a", "b"), topics)
	ms := allSubscribed(topics, "a", "b", "c")
	ms[0].current, ms[1].current = first["a"], first["b"]
	second := assignUniform(ms, topics)
	checkComplete(t, topics, second)
	for _, id := range []string{"a", "b"} {
		if len(second[id]) != 2 || !subsetOf(second[id], first[id]) {
			t.Fatalf("%s had %v, now %v: want 2 of its own", id, first[id], second[id])
		}
	}
}

// Only subscribers get a topic's partitions.
func TestAssignUniformHeterogeneous(t *testing.T) {
	topics := assignTopics(4, 2)
	ms := allSubscribed(topics, "a", "b")
	delete(ms[1].topics, [16]byte{1}) // b takes only t1
	out := assignUniform(ms, topics)
	checkComplete(t, topics, out)
	for tp := range out["b"] {
		if tp.topic != [16]byte{2} {
			t.Fatalf("b got %v of a topic it does not subscribe to", tp)
		}
	}
	if len(out["a"]) != 4 || len(out["b"]) != 2 {
		t.Fatalf("a %d, b %d partitions: want 4 and 2", len(out["a"]), len(out["b"]))
	}
}

func TestAssignRangeByTopic(t *testing.T) {
	topics := assignTopics(5, 2)
	out := assignRange(allSubscribed(topics, "b", "a"), topics)
	checkComplete(t, topics, out)
	want := map[string][]topicPart{
		"a": {{[16]byte{1}, 0}, {[16]byte{1}, 1}, {[16]byte{1}, 2}, {[16]byte{2}, 0}},
		"b": {{[16]byte{1}, 3}, {[16]byte{1}, 4}, {[16]byte{2}, 1}},
	}
	for id, tps := range want {
		if len(out[id]) != len(tps) {
			t.Fatalf("%s: %v, want %v", id, sortedParts(out[id], topics), tps)
		}
		for _, tp := range tps {
			if _, ok := out[id][tp]; !ok {
				t.Fatalf("%s: %v, want %v", id, sortedParts(out[id], topics), tps)
			}
		}
	}
}

// A member loaded from the log may name a server assignor this
// coordinator does not have (Kafka allows custom ones); the group must
// still compute its target with one it has, not call a nil assignor.
func TestPreferredAssignorIgnoresUnknown(t *testing.T) {
	var cg consumerGroup
	cg.init()
	cg.members["a"] = &consumerMember{id: "a", assignor: "custom"}
	cg.members["b"] = &consumerMember{id: "b", assignor: "custom"}
	cg.members["c"] = &consumerMember{id: "c", assignor: "range"}
	if got := cg.preferredAssignor(); got != "range" {
		t.Fatalf("preferred assignor %q, want range", got)
	}
	delete(cg.members, "c")
	if got := cg.preferredAssignor(); assignors[got] == nil {
		t.Fatalf("preferred assignor %q is not served", got)
	}
}
