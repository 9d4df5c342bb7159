package raftactor

import (
	"fmt"
	"slices"
)

// Replica placement, decided by the controller at apply so every node
// computes the same answer from the same entry.

// Place assigns rf replicas to each of n partitions over nodes. The first
// replica, the preferred leader, goes round-robin from start, so leaders
// spread evenly over the nodes and consecutive topics begin on different
// nodes; the others follow it in node order, shifted by one more for each
// full round (as Kafka's assignReplicasToBrokersRackUnaware does) so that
// followers spread as well.
func Place(nodes []int32, n int, rf int, start uint64) ([][]int32, error) {
	if rf < 1 || rf > len(nodes) {
		return nil, fmt.Errorf("replication factor %d with %d nodes", rf, len(nodes))
	}
	ids := slices.Clone(nodes)
	slices.Sort(ids)
	k := len(ids)
	out := make([][]int32, n)
	for p := range n {
		first := (int(start%uint64(k)) + p) % k
		reps := []int32{ids[first]}
		if k > 1 {
			// Followers among the k-1 other nodes, starting at an offset
			// that moves by one each full round; never the first again.
			shift := (p / k) % (k - 1)
			for j := 1; j < rf; j++ {
				reps = append(reps, ids[(first+1+(shift+j-1)%(k-1))%k])
			}
		}
		out[p] = reps
	}
	return out, nil
}

// CheckAssignment validates replica sets given explicitly (CreateTopics'
// assignments, CreatePartitions' new ones): every set names known nodes,
// none twice, all of one size.
func CheckAssignment(nodes []int32, sets [][]int32) error {
	for i, set := range sets {
		if len(set) == 0 {
			return fmt.Errorf("partition %d has no replicas", i)
		}
		if len(set) != len(sets[0]) {
			return fmt.Errorf("partition %d has %d replicas, partition 0 %d", i, len(set), len(sets[0]))
		}
		for j, id := range set {
			if !slices.Contains(nodes, id) {
				return fmt.Errorf("partition %d names node %d, which is not in the cluster", i, id)
			}
			if slices.Contains(set[:j], id) {
				return fmt.Errorf("partition %d names node %d twice", i, id)
			}
		}
	}
	return nil
}
