package testkit

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestGroupKIP848 runs two franz-go members with the KIP-848 consumer
// protocol (kgo.ServerSideBalancer: ConsumerGroupHeartbeat, the broker
// assigns partitions): together they receive every record and commit them
// all, and ConsumerGroupDescribe shows both members with disjoint
// assignments that cover the topic and match what each client was given.
//
// franz-go falls back to the classic protocol, silently, when the broker
// does not advertise ConsumerGroupHeartbeat v1; the check therefore first
// requires the KIP-848 APIs and fails naming what is missing.
func TestGroupKIP848(t *testing.T) {
	const partitions = 4
	f := newGroupFixture(t, kip848GroupAPIs, partitions)
	adm := f.admin()
	t.Cleanup(func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ds, err := adm.DescribeConsumerGroups(ctx, f.group)
			t.Logf("ConsumerGroupDescribe %s at failure: %+v (err %v)", f.group, ds[f.group], err)
		}
	})
	ends := f.produce("kip848", 800, 40)

	seen := newSeenRecords()
	a := f.member("next-gen-a", seen, kgo.ServerSideBalancer())
	b := f.member("next-gen-b", seen, kgo.ServerSideBalancer())
	waitAssignment(t, partitions, 30*time.Second, a, b)
	waitAllSeen(t, seen, zeroOffsets(partitions), ends, 30*time.Second, "two KIP-848 members")
	f.waitCommitted(ends, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Assignments name topics by id only, so the check reads the raw
	// response and resolves the id from metadata.
	md, err := adm.Metadata(ctx, f.topic)
	if err != nil {
		t.Fatalf("metadata of %s: %v", f.topic, err)
	}
	topicID := md.Topics[f.topic].ID
	cl := NewClient(t, f.addr)
	wait.For(t, 30*time.Second, func() error {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{f.group}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("ConsumerGroupDescribe: %w", err)
		}
		if len(resp.Groups) != 1 || resp.Groups[0].Group != f.group {
			return fmt.Errorf("ConsumerGroupDescribe for %s answered %d groups", f.group, len(resp.Groups))
		}
		d := resp.Groups[0]
		if err := kerr.ErrorForCode(d.ErrorCode); err != nil {
			return fmt.Errorf("ConsumerGroupDescribe %s: %w", f.group, err)
		}
		if d.State != "Stable" || len(d.Members) != 2 {
			return fmt.Errorf("group %s: state %q, %d members, want Stable with 2", f.group, d.State, len(d.Members))
		}
		byClient := map[string]*groupMember{a.name: a, b.name: b}
		owner := map[int32]string{}
		for _, m := range d.Members {
			gm, ok := byClient[m.ClientID]
			if !ok {
				return fmt.Errorf("member %s has client id %q, not one of ours", m.MemberID, m.ClientID)
			}
			if resp.Version >= 1 && m.MemberType != 1 {
				return fmt.Errorf("member %s (%s) has member type %d, want 1 (a KIP-848 consumer, not a classic member)", m.MemberID, m.ClientID, m.MemberType)
			}
			if m.MemberEpoch < 1 {
				return fmt.Errorf("member %s (%s): epoch %d, want ≥ 1", m.MemberID, m.ClientID, m.MemberEpoch)
			}
			if !slices.Equal(m.SubscribedTopics, []string{f.topic}) {
				return fmt.Errorf("member %s (%s) subscribed to %v, want [%s]", m.MemberID, m.ClientID, m.SubscribedTopics, f.topic)
			}
			var ps []int32
			for _, tp := range m.Assignment.TopicPartitions {
				if tp.TopicID != topicID {
					return fmt.Errorf("member %s (%s) is assigned topic id %x, not %s's %x", m.MemberID, m.ClientID, tp.TopicID, f.topic, topicID)
				}
				ps = append(ps, tp.Partitions...)
			}
			slices.Sort(ps)
			if len(ps) == 0 {
				return fmt.Errorf("member %s (%s) has no partitions assigned (client holds %v)", m.MemberID, m.ClientID, gm.partitions())
			}
			if got := gm.partitions(); !slices.Equal(got, ps) {
				return fmt.Errorf("member %s (%s): the broker describes %v, the client holds %v", m.MemberID, m.ClientID, ps, got)
			}
			for _, p := range ps {
				if o, dup := owner[p]; dup {
					return fmt.Errorf("partition %d assigned to both %s and %s", p, o, m.ClientID)
				}
				owner[p] = m.ClientID
			}
		}
		if len(owner) != partitions {
			return fmt.Errorf("the members' assignments cover %d of %d partitions: %v", len(owner), partitions, owner)
		}
		return nil
	})
}
