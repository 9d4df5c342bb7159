package testkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestClusterSIGKILLLeader runs three chronik-actor processes as one
// cluster and an RF=3 topic under acks=all idempotent producers seeded with
// all three nodes; it SIGKILLs the node leading partition 0 mid-load,
// keeps producing until the survivors have acknowledged more records (a
// new leader was elected), restarts the killed node on its data directory
// and waits until every partition's leader counts it in sync again. Then
// every acknowledged record is read back exactly once at its acknowledged
// offset, offsets run from 0 with no gap and nothing is stored twice.
func TestClusterSIGKILLLeader(t *testing.T) {
	SkipUnlessChronik(t, "a cluster of chronik-actor processes; kfake is no such cluster")
	const (
		topic       = "cluster-sigkill"
		partitions  = 3
		producers   = 3
		beforeKill  = 7000 // acknowledged records to wait for before the kill
		afterKill   = 8000
		clusterSize = 3
	)
	procs := StartCluster(t, clusterSize)
	var addrs []string
	for _, p := range procs {
		addrs = append(addrs, p.Addr())
	}
	seeds := strings.Join(addrs, ",")
	cl := NewClient(t, seeds)
	adm := kadm.NewClient(cl)
	createClusterTopic(t, adm, topic, partitions, clusterSize)

	acked := &ackLog{at: map[int32]map[int64]string{}}
	load := startLoad(t, seeds, topic, 1, producers, acked)
	waitAcked(t, acked, beforeKill)

	leader := partitionLeader(t, adm, topic, 0)
	victim := nodeProcess(t, adm, procs, leader)
	victim.Kill()
	atKill := acked.count()
	p0AtKill := acked.partitionCount(0)
	t.Logf("SIGKILL node %d (leader of partition 0) with %d records acknowledged", leader, atKill)

	waitAcked(t, acked, atKill+afterKill)
	// Partition 0 itself took writes again: the survivors elected a leader.
	wait.For(t, time.Minute, func() error {
		if n := acked.partitionCount(0); n <= p0AtKill {
			return fmt.Errorf("partition 0: %d records acknowledged, none since the kill (%d)", n, p0AtKill)
		}
		return nil
	})
	load.stop(t)
	var newLeader int32
	wait.For(t, 30*time.Second, func() error {
		if newLeader = partitionLeader(t, adm, topic, 0); newLeader == leader {
			return fmt.Errorf("metadata still names the killed node %d leader of partition 0 (%d records acknowledged there since the kill)", leader, acked.partitionCount(0)-p0AtKill)
		}
		return nil
	})
	t.Logf("%d records acknowledged after the kill; partition 0 now led by node %d", acked.count()-atKill, newLeader)

	victim.Restart()
	waitInSync(t, cl, adm, topic, partitions, leader)
	verifyAcked(t, seeds, topic, partitions, acked)
}

// createClusterTopic creates topic with replication factor rf, retrying
// while the cluster forms (NOT_CONTROLLER, REQUEST_TIMED_OUT and the like),
// and waits until every partition has a leader.
func createClusterTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32, rf int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wait.For(t, time.Minute, func() error {
		resp, err := adm.CreateTopic(ctx, partitions, rf, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return err
	})
	wait.For(t, time.Minute, func() error {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		td := md.Topics[topic]
		if td.Err != nil || int32(len(td.Partitions)) != partitions {
			return fmt.Errorf("topic %s: %d partitions, err %v", topic, len(td.Partitions), td.Err)
		}
		for _, p := range td.Partitions {
			if p.Leader < 0 || p.Err != nil || len(p.Replicas) != int(rf) {
				return fmt.Errorf("partition %d: leader %d, replicas %v, err %v", p.Partition, p.Leader, p.Replicas, p.Err)
			}
		}
		return nil
	})
}

func (a *ackLog) partitionCount(p int32) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at[p])
}

func waitAcked(t testing.TB, acked *ackLog, want int64) {
	t.Helper()
	wait.For(t, 2*time.Minute, func() error {
		if n := acked.count(); n < want {
			return fmt.Errorf("%d records acknowledged, waiting for %d", n, want)
		}
		return nil
	})
}

// partitionLeader waits until metadata names a leader for the partition.
func partitionLeader(t testing.TB, adm *kadm.Client, topic string, partition int32) int32 {
	t.Helper()
	var leader int32
	wait.For(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		p, ok := md.Topics[topic].Partitions[partition]
		if !ok || p.Leader < 0 || p.Err != nil {
			return fmt.Errorf("partition %d: no leader yet (%v)", partition, p.Err)
		}
		leader = p.Leader
		return nil
	})
	return leader
}

// nodeProcess is the process whose Kafka address metadata gives node id.
func nodeProcess(t testing.TB, adm *kadm.Client, procs []*Process, id int32) *Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bs, err := adm.ListBrokers(ctx)
	if err != nil {
		t.Fatalf("list brokers: %v", err)
	}
	for _, b := range bs {
		if b.NodeID != id {
			continue
		}
		addr := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		for _, p := range procs {
			if p.Addr() == addr {
				return p
			}
		}
		t.Fatalf("node %d advertises %s, which no process listens on", id, addr)
	}
	t.Fatalf("node %d not among the brokers %v", id, bs)
	return nil
}

// waitInSync waits until, for every partition, the leader itself counts
// node id among its in-sync replicas: the restarted node has rejoined and
// caught up.
func waitInSync(t testing.TB, cl *kgo.Client, adm *kadm.Client, topic string, partitions int32, id int32) {
	t.Helper()
	wait.For(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		for part := int32(0); part < partitions; part++ {
			mp, ok := md.Topics[topic].Partitions[part]
			if !ok || mp.Leader < 0 || mp.Err != nil {
				return fmt.Errorf("partition %d: no leader yet (%v)", part, mp.Err)
			}
			leader := mp.Leader
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			// Only the leader's answer has the leader's in-sync view.
			raw, err := cl.Broker(int(leader)).Request(ctx, req)
			if err != nil {
				return fmt.Errorf("metadata from node %d: %w", leader, err)
			}
			resp := raw.(*kmsg.MetadataResponse)
			if len(resp.Topics) != 1 || int(part) >= len(resp.Topics[0].Partitions) {
				return fmt.Errorf("metadata from node %d: no partition %d", leader, part)
			}
			for _, p := range resp.Topics[0].Partitions {
				if p.Partition != part {
					continue
				}
				if p.Leader != leader {
					return fmt.Errorf("partition %d: node %d answers leader %d", part, leader, p.Leader)
				}
				if !slices.Contains(p.ISR, id) {
					return fmt.Errorf("partition %d: leader %d has in sync %v, not yet node %d", part, leader, p.ISR, id)
				}
			}
		}
		return nil
	})
}
