package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
// cluster and an RF=3 topic of six partitions under acks=all idempotent
// producers seeded with all three nodes. For each partition in turn it
// SIGKILLs the node leading it mid-load, keeps producing until that
// partition acknowledges writes again (the survivors elected a leader and
// metadata no longer names the killed node), restarts the killed node on
// its data directory and waits until every partition's leader counts it
// in sync again and its replicas have reached the leaders' high
// watermarks. The load runs on until total records are acknowledged.
// Then every acknowledged record is read back exactly once at its
// acknowledged offset, offsets run from 0 with no gap and nothing is
// stored twice; and once all three nodes hold every record and have
// stopped cleanly (SIGTERM), each partition's segment bytes are the same
// on all three.
func TestClusterSIGKILLLeader(t *testing.T) {
	SkipUnlessChronik(t, "a cluster of chronik-actor processes; kfake is no such cluster")
	const (
		topic       = "cluster-sigkill"
		partitions  = 6
		producers   = 3
		beforeKill  = 3000  // acknowledged records to wait for before the first kill
		afterKill   = 2000  // acknowledged records, all partitions, after each kill
		total       = 50000 // acknowledged records in all
		perSec      = 600   // records a second per producer: ~50,000 over the six kills
		clusterSize = 3
	)
	procs := StartCluster(t, clusterSize)
	seeds := Seeds(procs)
	cl := NewClient(t, seeds)
	adm := kadm.NewClient(cl)
	createClusterTopic(t, adm, topic, partitions, clusterSize)

	acked := &ackLog{at: map[int32]map[int64]string{}}
	load := startPacedLoad(t, seeds, topic, 1, producers, perSec, acked)
	start := time.Now()
	waitAcked(t, acked, beforeKill)

	for part := int32(0); part < partitions; part++ {
		leader := partitionLeader(t, adm, topic, part)
		victim := nodeProcess(t, adm, procs, leader)
		victim.Kill()
		atKill := acked.count()
		pAtKill := acked.partitionCount(part)
		t.Logf("%v: SIGKILL node %d (leader of partition %d) with %d records acknowledged", time.Since(start).Round(time.Millisecond), leader, part, atKill)

		waitAcked(t, acked, atKill+afterKill)
		// The partition itself took writes again: the survivors elected a
		// leader.
		wait.For(t, time.Minute, func() error {
			if n := acked.partitionCount(part); n <= pAtKill {
				return fmt.Errorf("partition %d: %d records acknowledged, none since the kill (%d)", part, n, pAtKill)
			}
			return nil
		})
		t.Logf("%v: partition %d takes writes again", time.Since(start).Round(time.Millisecond), part)
		var newLeader int32
		wait.For(t, 30*time.Second, func() error {
			if newLeader = partitionLeader(t, adm, topic, part); newLeader == leader {
				return fmt.Errorf("metadata still names the killed node %d leader of partition %d (%d records acknowledged there since the kill)", leader, part, acked.partitionCount(part)-pAtKill)
			}
			return nil
		})
		t.Logf("%v: %d records acknowledged after the kill; partition %d now led by node %d", time.Since(start).Round(time.Millisecond), acked.count()-atKill, part, newLeader)

		victim.Restart()
		waitInSync(t, cl, adm, topic, partitions, leader)
		// The leader's in-sync flag can lag (it may still count the node
		// in sync from before the kill): wait too until the restarted
		// node's replicas have applied what the leaders had committed.
		waitCaughtUp(t, procs, topic, leader)
		t.Logf("%v: node %d restarted, in sync and caught up", time.Since(start).Round(time.Millisecond), leader)
	}
	waitAcked(t, acked, total)
	load.stop(t)
	t.Logf("%v: %d records acknowledged in all", time.Since(start).Round(time.Millisecond), acked.count())
	ends := verifyAcked(t, seeds, topic, partitions, acked)

	// Every node holds every record before it stops, and the stop is clean.
	for _, p := range procs {
		waitApplied(t, p, topic, ends)
	}
	t.Logf("%v: verified; all nodes applied everything", time.Since(start).Round(time.Millisecond))
	for _, p := range procs {
		p.Stop(30 * time.Second)
	}
	t.Logf("%v: all nodes stopped", time.Since(start).Round(time.Millisecond))
	for part := int32(0); part < partitions; part++ {
		var first []byte
		for i, p := range procs {
			b := segmentBytes(t, p, topic, part)
			if i == 0 {
				first = b
				continue
			}
			if !bytes.Equal(b, first) {
				t.Fatalf("partition %d: node %d's segments (%d bytes) differ from node 1's (%d bytes), first at byte %d", part, i+1, len(b), len(first), firstDiff(b, first))
			}
		}
		t.Logf("partition %d: %d segment bytes identical on all %d nodes", part, len(first), len(procs))
	}
}

// waitCaughtUp waits until node id's replica of every partition of topic
// has at least the high watermark the partition's leader reports at the
// start of the wait.
func waitCaughtUp(t testing.TB, procs []*Process, topic string, id int32) {
	t.Helper()
	target := map[int32]int64{}
	wait.For(t, time.Minute, func() error {
		clear(target)
		parts := -1
		for i, p := range procs {
			v, err := nodeView(p)
			if err != nil {
				return err
			}
			tv := topicOf(v, topic)
			if tv == nil {
				return fmt.Errorf("node %d does not know topic %s", i+1, topic)
			}
			parts = len(tv.Partitions)
			for _, pv := range tv.Partitions {
				if pv.Progress != nil {
					target[pv.Partition] = pv.HighWatermark
				}
			}
		}
		if len(target) < parts {
			return fmt.Errorf("not every partition has a leader yet: leaders' high watermarks %v", target)
		}
		return nil
	})
	waitApplied(t, procs[id-1], topic, target)
}

// segmentBytes is the concatenation of the .log segment files of node p's
// replica of topic/partition, in name order.
func segmentBytes(t testing.TB, p *Process, topic string, partition int32) []byte {
	t.Helper()
	dir := filepath.Join(p.dataDir, "partitions", fmt.Sprintf("%s-%d", topic, partition))
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("segments of %s: %v", dir, err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		t.Fatalf("%s holds no .log segment", dir)
	}
	var all []byte
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("read segment: %v", err)
		}
		all = append(all, b...)
	}
	return all
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
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
