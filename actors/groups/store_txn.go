package groups

// Transactional offsets in the store (TxnOffsetCommit, KIP-98), as
// Kafka's OffsetMetadataManager replays them: an offset commit record of
// a transactional batch is pending under its producer id until that
// producer's marker in the same partition commits it (it becomes the
// committed offset unless a later record already is) or aborts it. Pending
// offsets are never read as committed; a tombstone drops the committed
// offset and every pending one of its partition. All of it is a function
// of the log, so a replay rebuilds it.

import "github.com/chronik-actor/chronik-actor/protocol"

func putOffset(m map[string]map[int32]storedOffset, topic string, partition int32, o storedOffset) {
	ps := m[topic]
	if ps == nil {
		ps = map[int32]storedOffset{}
		m[topic] = ps
	}
	ps[partition] = o
}

func deleteOffset(m map[string]map[int32]storedOffset, topic string, partition int32) {
	if ps := m[topic]; ps != nil {
		delete(ps, partition)
		if len(ps) == 0 {
			delete(m, topic)
		}
	}
}

// addPending records a pending offset of producer pid's transaction.
func (s *groupStore) addPending(name string, g *storedGroup, pid int64, topic string, partition int32, o storedOffset) {
	if g.pending == nil {
		g.pending = map[int64]map[string]map[int32]storedOffset{}
	}
	offs := g.pending[pid]
	if offs == nil {
		offs = map[string]map[int32]storedOffset{}
		g.pending[pid] = offs
	}
	putOffset(offs, topic, partition, o)
	gs := s.txns[pid]
	if gs == nil {
		gs = map[string]struct{}{}
		s.txns[pid] = gs
	}
	gs[name] = struct{}{}
}

// dropPending removes every producer's pending offset of a partition (a
// tombstone for it was written).
func (s *groupStore) dropPending(name string, g *storedGroup, topic string, partition int32) {
	for pid, offs := range g.pending {
		deleteOffset(offs, topic, partition)
		if len(offs) == 0 {
			delete(g.pending, pid)
			if gs := s.txns[pid]; gs != nil {
				delete(gs, name)
				if len(gs) == 0 {
					delete(s.txns, pid)
				}
			}
		}
	}
}

// endTxn applies producer pid's marker: its pending offsets become
// committed (commit) or are dropped (abort). A marker with nothing
// pending, for a transaction without offsets here, changes nothing.
func (s *groupStore) endTxn(pid int64, commit bool) {
	for name := range s.txns[pid] {
		g := s.groups[name]
		if g == nil {
			continue
		}
		offs := g.pending[pid]
		delete(g.pending, pid)
		if commit {
			for t, ps := range offs {
				for p, o := range ps {
					// The later record wins, whichever arrived last: a
					// plain commit written while the transaction was open
					// supersedes it, in the log as compaction keeps it too.
					if cur, ok := g.offsets[t][p]; !ok || o.at > cur.at {
						putOffset(g.offsets, t, p, o)
					}
				}
			}
		}
		s.dropIfEmpty(name)
	}
	delete(s.txns, pid)
}

// hasPending reports whether a transaction holds a pending offset of the
// group's topic/partition (OffsetFetch's RequireStable).
func (s *groupStore) hasPending(group, topic string, partition int32) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if g := s.groups[group]; g != nil {
		for _, offs := range g.pending {
			if _, ok := offs[topic][partition]; ok {
				return true
			}
		}
	}
	return false
}

// pendingPartitions are the partitions of group with a pending offset in
// some transaction; nil when none.
func (s *groupStore) pendingPartitions(group string) map[string]map[int32]bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[group]
	if g == nil || len(g.pending) == 0 {
		return nil
	}
	out := map[string]map[int32]bool{}
	for _, offs := range g.pending {
		for t, ps := range offs {
			if out[t] == nil {
				out[t] = map[int32]bool{}
			}
			for p := range ps {
				out[t][p] = true
			}
		}
	}
	return out
}

// pendingOffset is producer pid's pending offset of group's
// topic/partition, for tests.
func (s *groupStore) pendingOffset(pid int64, group, topic string, partition int32) (Offset, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if g := s.groups[group]; g != nil {
		o, ok := g.pending[pid][topic][partition]
		return o.Offset, ok
	}
	return Offset{}, false
}

// fetchOffset is what OffsetFetch answers for one partition, read under
// one lock so a marker cannot land between the two checks: the committed
// offset, and whether a transaction holds a pending one.
func (s *groupStore) fetchOffset(group, topic string, partition int32) (o Offset, ok, pending bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[group]
	if g == nil {
		return Offset{}, false, false
	}
	so, ok := g.offsets[topic][partition]
	for _, offs := range g.pending {
		if _, p := offs[topic][partition]; p {
			pending = true
			break
		}
	}
	return so.Offset, ok, pending
}

// allOffsetTombstones delete every offset of group, committed or pending
// in a transaction (Kafka's deleteAllOffsets): a transaction committing
// after the group was deleted must not bring its offsets back.
func (s *groupStore) allOffsetTombstones(group string) []protocol.Record {
	offs := s.offsets(group)
	recs := offsetTombstones(group, offs)
	for t, ps := range s.pendingPartitions(group) {
		for p := range ps {
			if _, ok := offs[t][p]; !ok {
				recs = append(recs, offsetTombstone(group, t, p))
			}
		}
	}
	return recs
}
