package testkit

import (
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestClusterFullSIGKILL runs three chronik-actor processes as one cluster
// and an RF=3 topic under acks=all idempotent producers, SIGKILLs all three
// nodes at once (no node is left to hold anything in memory, and none had
// a chance to flush), restarts all three on their data directories, and
// then reads the topic back: every acknowledged record is there exactly
// once at its acknowledged offset, offsets run from 0 with no gap, and
// nothing is stored twice. A quorum fsynced every acknowledged record, so
// the restarted nodes must elect leaders that have them all.
func TestClusterFullSIGKILL(t *testing.T) {
	SkipUnlessChronik(t, "a cluster of chronik-actor processes; kfake is no such cluster")
	const (
		topic       = "cluster-fullkill"
		partitions  = 3
		producers   = 3
		beforeKill  = 6000 // acknowledged records to wait for before the kill
		clusterSize = 3
	)
	procs := StartCluster(t, clusterSize)
	seeds := Seeds(procs)
	adm := kadm.NewClient(NewClient(t, seeds))
	createClusterTopic(t, adm, topic, partitions, clusterSize)

	acked := &ackLog{at: map[int32]map[int64]string{}}
	load := startLoad(t, seeds, topic, 1, producers, acked)
	waitAcked(t, acked, beforeKill)
	// SIGKILL is sent to every node before waiting for any to exit, so
	// the three die within microseconds of each other, mid-load.
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL pid %d: %v", p.cmd.Process.Pid, err)
		}
	}
	for _, p := range procs {
		p.Kill()
	}
	load.stop(t)
	t.Logf("SIGKILL all %d nodes with %d records acknowledged", clusterSize, acked.count())

	for _, p := range procs {
		p.Restart()
	}
	// The cluster is back once every partition has a leader again; the
	// read-back then waits until the leaders' end offsets cover every
	// acknowledged record.
	for part := int32(0); part < partitions; part++ {
		t.Logf("after the restart partition %d is led by node %d", part, partitionLeader(t, adm, topic, part))
	}
	verifyAcked(t, seeds, topic, partitions, acked)
}
