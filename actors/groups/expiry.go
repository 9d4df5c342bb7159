package groups

import (
	"time"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// Offset expiry (offsets.retention.minutes, KIP-211): a sweep on the
// coordinator asks each group that may hold something expired to clean
// itself up; the group decides, as Kafka's removeExpiredOffsets does, and
// writes tombstones. An empty group left without offsets is deleted.

// sweepLoop runs the expiry sweep until Stop.
func (co *Coordinator) sweepLoop() {
	defer co.wg.Done()
	t := time.NewTicker(co.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-co.stop:
			return
		case now := <-t.C:
			co.sweep(now)
		}
	}
}

// sweep sends an expiry check to every live group and to the stored
// groups the store says may have something to expire or members to time
// out, on the offsets partitions this node leads.
func (co *Coordinator) sweep(now time.Time) {
	retention := co.cfg.OffsetsRetention
	co.mu.Lock()
	live := make([]string, 0, len(co.actors))
	for name := range co.actors {
		live = append(live, name)
	}
	co.mu.Unlock()
	stores := co.allStores()
	seen := map[string]bool{}
	for _, name := range live {
		seen[name] = true
		co.Route(name, &expireOp{now: now})
	}
	for p, s := range stores {
		if h := co.node.OffsetsReplica(p); h == nil || !h.LeaderReady() {
			continue
		}
		for _, name := range s.sweepCandidates(now, retention) {
			if !seen[name] {
				co.Route(name, &expireOp{now: now})
			}
		}
	}
}

// sweepCandidates are the groups holding an offset older than retention,
// or members stored by a coordinator before this one (they must be loaded
// to time out).
func (s *groupStore) sweepCandidates(now time.Time, retention time.Duration) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cutoff := now.Add(-retention).UnixMilli()
	var out []string
	for name, g := range s.groups {
		// Groups with members (classic or consumer) are swept so members
		// that died while the coordinator was away time out.
		if g.meta != nil && (len(g.meta.Members) > 0 || g.meta.CurrentStateTimestamp <= cutoff) ||
			g.consumer != nil && len(g.consumer.members) > 0 {
			out = append(out, name)
			continue
		}
	old:
		for _, ps := range g.offsets {
			for _, o := range ps {
				if o.CommitTimestamp <= cutoff {
					out = append(out, name)
					break old
				}
			}
		}
	}
	return out
}

// expire removes the group's expired offsets, and the group itself once
// it is empty and has none left.
func (g *group) expire(now time.Time) {
	if g.state == StateDead {
		return
	}
	if len(g.writes) > 0 {
		// Decide on what the log will say once the writes in flight land.
		g.expireAt = now
		return
	}
	cutoff := now.Add(-g.co.cfg.OffsetsRetention).UnixMilli()
	offs := g.store.offsets(g.name)
	// An offset a transaction is about to replace does not expire, and a
	// group with pending offsets stays (Kafka's cleanupExpiredOffsets).
	pending := g.store.pendingPartitions(g.name)
	var recs []protocol.Record
	left := len(pending)
	for t, ps := range offs {
		for p, o := range ps {
			if g.offsetExpired(t, o, cutoff) && !pending[t][p] {
				recs = append(recs, offsetTombstone(g.name, t, p))
			} else {
				left++
			}
		}
	}
	if g.state != stateEmpty || g.classic.busy() || left > 0 {
		if len(recs) > 0 {
			g.write(recs, func(err error) {
				if err != nil {
					g.co.node.Log().Warn("offset expiry failed", "group", g.name, "err", err)
				}
			})
		}
		return
	}
	if g.kind == groupConsumer {
		recs = append(recs, g.consumerTombstones()...)
	}
	if g.store.metadata(g.name) != nil || g.generation > 0 {
		recs = append(recs, groupTombstone(g.name))
	}
	if len(recs) == 0 {
		return
	}
	g.die(recs, func(err error) {
		if err != nil {
			g.co.node.Log().Warn("group expiry failed", "group", g.name, "err", err)
		}
	})
}

// offsetExpired is KIP-211's rule: an empty group's offsets expire
// retention after it became empty; a live "consumer" group's only for
// topics it no longer subscribes to; a simple consumer's (no protocol)
// retention after their commit.
func (g *group) offsetExpired(topic string, o Offset, cutoff int64) bool {
	switch {
	case g.protocolType == "":
		return o.CommitTimestamp <= cutoff
	case g.state == stateEmpty:
		return g.stateSince.UnixMilli() <= cutoff && o.CommitTimestamp <= cutoff
	case g.protocolType == "consumer" && g.subscribedTopics() != nil:
		return !g.subscribedTopics()[topic] && o.CommitTimestamp <= cutoff
	}
	return false
}
