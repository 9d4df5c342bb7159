package groups

import (
	"sort"
)

// The server-side assignors of KIP-848 consumer groups, selected by a
// member's ServerAssignor: "uniform" (the default, as in Kafka) spreads
// all subscribed partitions evenly and moves as few as it can from the
// previous target; "range" gives each member a contiguous range of every
// topic it subscribes to.

const defaultAssignor = "uniform"

var assignors = map[string]func([]assignMember, map[[16]byte]assignTopic) map[string]partSet{
	"uniform": assignUniform,
	"range":   assignRange,
}

// assignMember is one member as an assignor sees it.
type assignMember struct {
	id      string
	topics  map[[16]byte]bool // subscribed topics that exist
	current partSet           // previous target, kept where it still fits
}

type assignTopic struct {
	name       string
	partitions int32
}

// sortedTopicIDs orders topics by name, so assignments do not depend on
// map order or on random ids.
func sortedTopicIDs(topics map[[16]byte]assignTopic) [][16]byte {
	ids := make([][16]byte, 0, len(topics))
	for id := range topics {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return topics[ids[i]].name < topics[ids[j]].name })
	return ids
}

// assignUniform keeps what each member had where it is still valid,
// hands out the rest to the least loaded eligible member, then moves
// partitions from the most to the least loaded until no member has two
// more than another it could give a partition to. With identical
// subscriptions the counts end within one of each other.
func assignUniform(members []assignMember, topics map[[16]byte]assignTopic) map[string]partSet {
	out := make(map[string]partSet, len(members))
	for _, m := range members {
		out[m.id] = partSet{}
	}
	if len(members) == 0 {
		return out
	}
	owner := map[topicPart]string{}
	for _, m := range members {
		for _, tp := range sortedParts(m.current, topics) {
			t, ok := topics[tp.topic]
			if ok && m.topics[tp.topic] && tp.partition < t.partitions && owner[tp] == "" {
				owner[tp] = m.id
				out[m.id][tp] = struct{}{}
			}
		}
	}
	for _, id := range sortedTopicIDs(topics) {
		for p := int32(0); p < topics[id].partitions; p++ {
			tp := topicPart{id, p}
			if owner[tp] != "" {
				continue
			}
			best := ""
			for _, m := range members {
				if m.topics[id] && (best == "" || len(out[m.id]) < len(out[best])) {
					best = m.id
				}
			}
			if best != "" {
				owner[tp] = best
				out[best][tp] = struct{}{}
			}
		}
	}
	for moveOne(members, topics, out) {
	}
	return out
}

// moveOne moves one partition from a member to one with at least two
// fewer that subscribes to its topic; false when none can move.
func moveOne(members []assignMember, topics map[[16]byte]assignTopic, out map[string]partSet) bool {
	byLoad := make([]assignMember, len(members))
	copy(byLoad, members)
	sort.SliceStable(byLoad, func(i, j int) bool { return len(out[byLoad[i].id]) > len(out[byLoad[j].id]) })
	for _, from := range byLoad {
		parts := sortedParts(out[from.id], topics)
		for i := len(byLoad) - 1; i >= 0; i-- {
			to := byLoad[i]
			if len(out[to.id])+2 > len(out[from.id]) {
				break // the rest are at least as loaded
			}
			// The last partition first: sticky members keep their lowest.
			for k := len(parts) - 1; k >= 0; k-- {
				if tp := parts[k]; to.topics[tp.topic] {
					delete(out[from.id], tp)
					out[to.id][tp] = struct{}{}
					return true
				}
			}
		}
	}
	return false
}

// assignRange gives, per topic, the subscribed members (by id) contiguous
// ranges, the first members one partition more when it does not divide.
func assignRange(members []assignMember, topics map[[16]byte]assignTopic) map[string]partSet {
	out := make(map[string]partSet, len(members))
	for _, m := range members {
		out[m.id] = partSet{}
	}
	for _, id := range sortedTopicIDs(topics) {
		var subs []string
		for _, m := range members {
			if m.topics[id] {
				subs = append(subs, m.id)
			}
		}
		if len(subs) == 0 {
			continue
		}
		sort.Strings(subs)
		n := topics[id].partitions
		per, extra := n/int32(len(subs)), n%int32(len(subs))
		p := int32(0)
		for i, mid := range subs {
			take := per
			if int32(i) < extra {
				take++
			}
			for end := p + take; p < end; p++ {
				out[mid][topicPart{id, p}] = struct{}{}
			}
		}
	}
	return out
}

// sortedParts orders a set by topic name, then partition.
func sortedParts(s partSet, topics map[[16]byte]assignTopic) []topicPart {
	out := make([]topicPart, 0, len(s))
	for tp := range s {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.topic != b.topic {
			na, nb := topics[a.topic].name, topics[b.topic].name
			if na != nb {
				return na < nb
			}
			return string(a.topic[:]) < string(b.topic[:])
		}
		return a.partition < b.partition
	})
	return out
}
