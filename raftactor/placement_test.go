package raftactor

import (
	"slices"
	"testing"
)

func TestPlaceSpreadsLeadersAndReplicas(t *testing.T) {
	nodes := []int32{3, 1, 2}
	got, err := Place(nodes, 6, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	for p, set := range got {
		if len(set) != 3 {
			t.Fatalf("partition %d: %v", p, set)
		}
		if CheckAssignment(nodes, [][]int32{set}) != nil {
			t.Fatalf("partition %d: invalid set %v", p, set)
		}
		leaders[set[0]]++
	}
	for _, id := range nodes {
		if leaders[id] != 2 {
			t.Fatalf("leaders %v: not even", leaders)
		}
	}
	again, _ := Place(nodes, 6, 3, 0)
	for p := range got {
		if !slices.Equal(got[p], again[p]) {
			t.Fatal("placement is not deterministic")
		}
	}
	one, _ := Place(nodes, 3, 1, 1)
	if one[0][0] != 2 || one[1][0] != 3 || one[2][0] != 1 {
		t.Fatalf("start offset ignored: %v", one)
	}
	if _, err := Place(nodes, 1, 4, 0); err == nil {
		t.Fatal("rf 4 on 3 nodes placed")
	}
	for _, bad := range [][][]int32{{{1, 1}}, {{1, 9}}, {{1, 2}, {3}}, {{}}} {
		if CheckAssignment(nodes, bad) == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}
