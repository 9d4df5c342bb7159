package cluster

import "sync"

// LeaderTable is one node's view of who leads every raft group: fed by its
// own replicas (what raft tells them) and by peers' announcements, the
// highest term winning. Metadata, FindCoordinator, DescribeCluster and the
// admin API read it, so no handler has to assume "this node".
type LeaderTable struct {
	mu sync.RWMutex
	m  map[uint64]LeaderEntry
}

// LeaderEntry is a group's leader (0: none known) in Term.
type LeaderEntry struct {
	Leader, Term uint64
}

// NewLeaderTable returns an empty table.
func NewLeaderTable() *LeaderTable { return &LeaderTable{m: map[uint64]LeaderEntry{}} }

// Observe records that leader leads group in term, unless the table knows
// a later term already, or a leader for this term (raft elects at most one
// per term, so a known one is never replaced by "none"). It reports
// whether the entry changed.
func (t *LeaderTable) Observe(group, leader, term uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.m[group]
	switch {
	case !ok, term > cur.Term:
	case term == cur.Term && cur.Leader == 0 && leader != 0:
	default:
		return false
	}
	t.m[group] = LeaderEntry{Leader: leader, Term: term}
	return true
}

// Get returns what the table knows of group.
func (t *LeaderTable) Get(group uint64) (LeaderEntry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.m[group]
	return e, ok
}

// Forget drops a group that no longer exists.
func (t *LeaderTable) Forget(group uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, group)
}
