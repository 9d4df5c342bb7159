package cluster

import "testing"

func TestLeaderTableHighestTermWins(t *testing.T) {
	lt := NewLeaderTable()
	steps := []struct {
		leader, term uint64
		changed      bool
		want         LeaderEntry
	}{
		{0, 2, true, LeaderEntry{0, 2}},  // an election under way
		{3, 2, true, LeaderEntry{3, 2}},  // its winner
		{0, 2, false, LeaderEntry{3, 2}}, // a follower that lost sight of it
		{1, 1, false, LeaderEntry{3, 2}}, // a stale announcement
		{1, 4, true, LeaderEntry{1, 4}},  // a later term
	}
	for i, s := range steps {
		if got := lt.Observe(9, s.leader, s.term); got != s.changed {
			t.Fatalf("step %d: changed %v, want %v", i, got, s.changed)
		}
		if e, _ := lt.Get(9); e != s.want {
			t.Fatalf("step %d: %+v, want %+v", i, e, s.want)
		}
	}
	lt.Forget(9)
	if _, ok := lt.Get(9); ok {
		t.Fatal("forgotten group still known")
	}
}
