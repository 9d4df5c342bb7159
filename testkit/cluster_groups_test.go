package testkit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestClusterGroupCoordinatorSIGKILL runs a franz-go consumer group on a
// three-node cluster and SIGKILLs the group's coordinator. The group lives
// on one __consumer_offsets partition, replicated on all three nodes, and
// is coordinated by that partition's leader: FindCoordinator must name the
// leader before the kill, and the partition's new leader after it. The
// committed offsets read back through OffsetFetch from the new coordinator
// are the ones committed before the kill; the member that ran through the
// kill goes on consuming new records, a second member then joins and the
// group rebalances on the new coordinator; between them they receive every
// record, and none committed before the kill is delivered again.
func TestClusterGroupCoordinatorSIGKILL(t *testing.T) {
	SkipUnlessChronik(t, "a cluster of chronik-actor processes; kfake is no such cluster")
	const (
		partitions  = 3
		perPhase    = 300
		clusterSize = 3
	)
	procs := StartCluster(t, clusterSize)
	seeds := Seeds(procs)
	adm := kadm.NewClient(NewClient(t, seeds))
	topic, group := uniqueName(t, "topic"), uniqueName(t, "group")
	createClusterTopic(t, adm, topic, partitions, clusterSize)
	logGroupOnFailure(t, seeds, group)

	seen := newSeenRecords()
	produceKeyed(t, seeds, topic, "before", perPhase, 12)
	ends1 := endOffsets(t, seeds, topic)
	a := startGroupMember(t, seeds, group, topic, "a", seen, kgo.SeedBrokers(strings.Split(seeds, ",")...))
	waitAllSeen(t, seen, zeroOffsets(partitions), ends1, time.Minute, "before the kill")
	waitCommitted(t, seeds, group, topic, ends1, time.Minute)

	part := offsetsPartition(t, adm, group)
	coordinator := groupCoordinator(t, adm, group)
	if leader := partitionLeader(t, adm, offsetsTopic, part); coordinator != leader {
		t.Fatalf("group %s lives on %s partition %d, led by node %d, but FindCoordinator names node %d", group, offsetsTopic, part, leader, coordinator)
	}
	victim := nodeProcess(t, adm, procs, coordinator)
	victim.Kill()
	t.Logf("SIGKILL node %d, coordinator of group %s (%s partition %d), with %v committed", coordinator, group, offsetsTopic, part, ends1)

	var newCoordinator int32
	wait.For(t, time.Minute, func() error {
		leader := partitionLeader(t, adm, offsetsTopic, part)
		if leader == coordinator {
			return fmt.Errorf("%s partition %d still led by the killed node %d", offsetsTopic, part, coordinator)
		}
		if c := groupCoordinator(t, adm, group); c != leader {
			return fmt.Errorf("FindCoordinator names node %d, %s partition %d is led by node %d", c, offsetsTopic, part, leader)
		}
		newCoordinator = leader
		return nil
	})
	t.Logf("group %s now coordinated by node %d", group, newCoordinator)
	// Unchanged by the kill: what was committed before it, and nothing
	// else (the member has had nothing new to commit).
	wait.For(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := committedOffsets(ctx, adm, group, topic)
		if err != nil {
			return err
		}
		if !equalOffsets(got, ends1) {
			t.Fatalf("after the kill OffsetFetch answers %v, committed before it %v", got, ends1)
		}
		return nil
	})

	// The member that ran through the kill resumes on the new coordinator.
	produceKeyed(t, seeds, topic, "after-kill", perPhase, 12)
	ends2 := endOffsets(t, seeds, topic)
	waitAllSeen(t, seen, ends1, ends2, time.Minute, "after the kill, member a alone")
	// A second member: the group rebalances on the new coordinator and
	// the partitions it takes over resume at their committed offsets.
	b := startGroupMember(t, seeds, group, topic, "b", seen, kgo.SeedBrokers(strings.Split(seeds, ",")...))
	waitAssignment(t, partitions, time.Minute, a, b)
	d, err := describeGroupWithin(adm, group, time.Minute, 2)
	if err != nil {
		t.Fatalf("after the rebalance: %v", err)
	}
	t.Logf("group %s on node %d: %s with %d members", group, newCoordinator, d.State, len(d.Members))
	produceKeyed(t, seeds, topic, "after-rebalance", perPhase, 12)
	ends3 := endOffsets(t, seeds, topic)
	waitAllSeen(t, seen, ends2, ends3, time.Minute, "after the rebalance")

	// Nothing committed before the kill came again; b started on each of
	// its partitions no earlier than what was committed before the kill.
	seen.mu.Lock()
	for p := int32(0); p < partitions; p++ {
		for o := int64(0); o < ends1[p]; o++ {
			if n := seen.seen[p][o]; n != 1 {
				seen.mu.Unlock()
				t.Fatalf("partition %d offset %d, committed before the kill, delivered %d times", p, o, n)
			}
		}
	}
	seen.mu.Unlock()
	for p, o := range seen.firstOffsets("b") {
		if o < ends1[p] {
			t.Fatalf("member b started partition %d at %d, before the offset %d committed before the kill", p, o, ends1[p])
		}
	}
	a.close()
	b.close()
	waitCommitted(t, seeds, group, topic, ends3, time.Minute)
}

const offsetsTopic = "__consumer_offsets"

// offsetsPartition is the __consumer_offsets partition group lives on:
// Kafka's abs(javaStringHashCode(group)) % partitions.
func offsetsPartition(t testing.TB, adm *kadm.Client, group string) int32 {
	t.Helper()
	var n int32
	wait.For(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		md, err := adm.Metadata(ctx, offsetsTopic)
		if err != nil {
			return err
		}
		td := md.Topics[offsetsTopic]
		if td.Err != nil || len(td.Partitions) == 0 {
			return fmt.Errorf("%s: %d partitions, err %v", offsetsTopic, len(td.Partitions), td.Err)
		}
		n = int32(len(td.Partitions))
		return nil
	})
	var h int32
	for _, r := range group {
		if r >= 0x10000 { // Java hashes UTF-16 code units
			r -= 0x10000
			h = 31*h + (0xD800 + r>>10)
			h = 31*h + (0xDC00 + r&0x3FF)
			continue
		}
		h = 31*h + r
	}
	switch {
	case h == -1<<31:
		h = 0 // Kafka's Utils.abs
	case h < 0:
		h = -h
	}
	return h % n
}

// groupCoordinator is the node FindCoordinator names for group.
func groupCoordinator(t testing.TB, adm *kadm.Client, group string) int32 {
	t.Helper()
	var id int32
	wait.For(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp := adm.FindGroupCoordinators(ctx, group)
		c, ok := resp[group]
		if !ok {
			return fmt.Errorf("FindCoordinator: no answer for group %s", group)
		}
		if c.Err != nil {
			return fmt.Errorf("FindCoordinator %s: %w", group, c.Err)
		}
		id = c.NodeID
		return nil
	})
	return id
}

// describeGroupWithin waits until the group is Stable with members members.
func describeGroupWithin(adm *kadm.Client, group string, within time.Duration, members int) (kadm.DescribedGroup, error) {
	var d kadm.DescribedGroup
	err := wait.Until(context.Background(), within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if d, err = describeGroup(ctx, adm, group); err != nil {
			return err
		}
		if d.State != "Stable" || len(d.Members) != members {
			return fmt.Errorf("group %s: %s with %d members, want Stable with %d", group, d.State, len(d.Members), members)
		}
		return nil
	})
	return d, err
}
