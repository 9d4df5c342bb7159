package testkit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataOf asks node id alone for topic's metadata.
func (c *clusterCore) metadataOf(id int32, topics ...string) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	seeds := c.probe.SeedBrokers()
	resp, err := seeds[id-1].Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", id, err)
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// partitionSeen is one node's Metadata answer for one partition.
type partitionSeen struct {
	from, leader, epoch int32
	replicas            []int32
}

// leaderSeen asks every reachable node who leads topic's partition p and
// takes the answer with the highest leader epoch, preferring, at equal
// epochs, the leader's own: a node names itself only when its replica
// leads and has applied an entry of its term (it accepts writes), while
// a node on the far side of a partition may still name an old leader.
func (c *clusterCore) leaderSeen(topic string, p int32) (best partitionSeen, found bool, err error) {
	var errs []error
	for _, id := range c.Nodes() {
		if !c.reachable(id) {
			continue
		}
		resp, merr := c.metadataOf(id, topic)
		if merr != nil {
			errs = append(errs, merr)
			continue
		}
		for _, rt := range resp.Topics {
			if rt.Topic == nil || *rt.Topic != topic {
				continue
			}
			for _, rp := range rt.Partitions {
				if rp.Partition != p {
					continue
				}
				seen := partitionSeen{from: id, leader: rp.Leader, epoch: rp.LeaderEpoch, replicas: rp.Replicas}
				if rp.Leader < 0 {
					if !found && best.replicas == nil {
						best.replicas = rp.Replicas
					}
					continue
				}
				self := seen.leader == seen.from
				if !found || seen.epoch > best.epoch || (seen.epoch == best.epoch && self && best.leader != best.from) {
					best, found = seen, true
				}
			}
		}
	}
	if !found {
		err = errors.Join(errs...)
		if err == nil {
			err = fmt.Errorf("no reachable node names a leader of %s-%d", topic, p)
		}
	}
	return best, found, err
}

// Leader is the node leading topic's partition p as the cluster's
// Metadata reports it (the answer with the highest leader epoch among
// the reachable nodes'), and whether one is known.
func (c *clusterCore) Leader(topic string, p int32) (int32, bool) {
	best, ok, _ := c.leaderSeen(topic, p)
	return best.leader, ok
}

// Followers are the other replicas of topic's partition p, as Metadata
// reports them; all replicas when no leader is known.
func (c *clusterCore) Followers(topic string, p int32) []int32 {
	best, _, _ := c.leaderSeen(topic, p)
	var out []int32
	for _, id := range best.replicas {
		if id != best.leader {
			out = append(out, id)
		}
	}
	return out
}

// WaitForLeader waits until partition p of topic has a leader that
// accepts writes (it names itself the leader at the highest epoch any
// node reports), and returns it.
func (c *clusterCore) WaitForLeader(topic string, p int32) int32 {
	c.t.Helper()
	var leader int32
	c.Eventually(c.deadline, func() error {
		best, ok, err := c.leaderSeen(topic, p)
		switch {
		case !ok:
			return err
		case best.leader != best.from:
			return fmt.Errorf("%s-%d: node %d names node %d the leader at epoch %d, which does not (yet) confirm it", topic, p, best.from, best.leader, best.epoch)
		}
		leader = best.leader
		return nil
	})
	return leader
}
