package actors

// OffsetFetch v0-v9: committed offsets, read from the store of the group's
// offsets partition (which a commit updates before it is answered). Groups
// are batched from v8; null topics (v2+) mean every committed partition;
// a partition without a commit has offset -1. Offsets of open
// transactions (TxnOffsetCommit) are never shown; with RequireStable
// (v7+) a partition one of them holds answers UNSTABLE_OFFSET_COMMIT and
// offset -1, as Kafka's OffsetMetadataManager.fetchOffsets does, so a
// read_committed consumer waits for the transaction to end.

import (
	"sort"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
)

func init() { register(kmsg.OffsetFetch, handleOffsetFetch) }

func handleOffsetFetch(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		var topics []kmsg.OffsetFetchRequestGroupTopic
		for _, t := range req.Topics {
			topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		if req.Topics == nil {
			topics = nil
		}
		g := c.fetchOffsets(req.Group, topics, req.Version >= 7 && req.RequireStable)
		resp.ErrorCode = g.ErrorCode
		for _, gt := range g.Topics {
			t := kmsg.NewOffsetFetchResponseTopic()
			t.Topic = gt.Topic
			for _, gp := range gt.Partitions {
				p := kmsg.NewOffsetFetchResponseTopicPartition()
				p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode
				if req.Version < 2 && g.ErrorCode != 0 {
					p.ErrorCode = g.ErrorCode // no top-level error before v2
				}
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		c.respond(r, resp)
		return
	}
	for _, rg := range req.Groups {
		// v9 names the member of a consumer group (KIP-848).
		if err := c.b.groups.ValidateOffsetFetch(rg.Group, rg.MemberID, rg.MemberEpoch); err != nil {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group, g.ErrorCode = rg.Group, err.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		resp.Groups = append(resp.Groups, c.fetchOffsets(rg.Group, rg.Topics, req.RequireStable))
	}
	c.respond(r, resp)
}

// fetchOffsets answers one group; topics nil means all committed ones.
// stable: partitions with a pending transactional offset answer
// UNSTABLE_OFFSET_COMMIT.
func (c *conn) fetchOffsets(group string, topics []kmsg.OffsetFetchRequestGroupTopic, stable bool) kmsg.OffsetFetchResponseGroup {
	g := kmsg.NewOffsetFetchResponseGroup()
	g.Group = group
	if err := c.b.groups.CoordinatorErr(group); err != nil {
		g.ErrorCode = err.Code
		// Requested partitions still get their rows, for v0-v1 clients.
		for _, rt := range topics {
			t := kmsg.NewOffsetFetchResponseGroupTopic()
			t.Topic = rt.Topic
			for _, p := range rt.Partitions {
				t.Partitions = append(t.Partitions, offsetRow(p, groups.Offset{Offset: -1, LeaderEpoch: -1}))
			}
			g.Topics = append(g.Topics, t)
		}
		return g
	}
	if topics == nil {
		var pending map[string]map[int32]bool
		if stable {
			pending = c.b.groups.PendingOffsets(group) // first: see PendingOffsets
		}
		all := c.b.groups.CommittedOffsets(group)
		names := make([]string, 0, len(all))
		for n := range all {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t := kmsg.NewOffsetFetchResponseGroupTopic()
			t.Topic = n
			ps := make([]int32, 0, len(all[n]))
			for p := range all[n] {
				ps = append(ps, p)
			}
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			for _, p := range ps {
				if pending[n][p] {
					t.Partitions = append(t.Partitions, unstableRow(p))
					continue
				}
				t.Partitions = append(t.Partitions, offsetRow(p, all[n][p]))
			}
			g.Topics = append(g.Topics, t)
		}
		return g
	}
	for _, rt := range topics {
		t := kmsg.NewOffsetFetchResponseGroupTopic()
		t.Topic = rt.Topic
		for _, p := range rt.Partitions {
			o, ok, pending := c.b.groups.FetchOffset(group, rt.Topic, p)
			if stable && pending {
				t.Partitions = append(t.Partitions, unstableRow(p))
				continue
			}
			if !ok {
				o = groups.Offset{Offset: -1, LeaderEpoch: -1}
			}
			t.Partitions = append(t.Partitions, offsetRow(p, o))
		}
		g.Topics = append(g.Topics, t)
	}
	return g
}

func offsetRow(p int32, o groups.Offset) kmsg.OffsetFetchResponseGroupTopicPartition {
	row := kmsg.NewOffsetFetchResponseGroupTopicPartition()
	meta := o.Metadata
	row.Partition, row.Offset, row.LeaderEpoch, row.Metadata = p, o.Offset, o.LeaderEpoch, &meta
	return row
}

// unstableRow is a partition whose offset a transaction is still
// committing, under RequireStable.
func unstableRow(p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
	row := offsetRow(p, groups.Offset{Offset: -1, LeaderEpoch: -1})
	row.ErrorCode = kerr.UnstableOffsetCommit.Code
	return row
}
