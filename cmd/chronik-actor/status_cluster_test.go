package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/testkit"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestClusterStatus runs `cluster status` against three chronik-actor
// processes: all UP with one controller leader and every partition led
// with lag figures; after a SIGKILL of the node leading the test topic's
// partition 0, that node is DOWN and, once the survivors have elected,
// leads nothing; with every node gone the command fails.
func TestClusterStatus(t *testing.T) {
	testkit.SkipUnlessChronik(t, "a cluster of chronik-actor processes")
	const topic = "status-demo"
	procs := testkit.StartCluster(t, 3)
	var seeds []string
	for _, p := range procs {
		seeds = append(seeds, p.Addr())
	}
	adm := kadm.NewClient(testkit.NewClient(t, strings.Join(seeds, ",")))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wait.For(t, time.Minute, func() error { // until the cluster has formed
		resp, err := adm.CreateTopic(ctx, 3, 3, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return err
	})

	cfg := procs[0].ConfigPath()
	var rep statusReport
	wait.For(t, time.Minute, func() error {
		rep = statusJSON(t, "--config", cfg)
		return checkStatus(rep, topic, 0)
	})
	text := statusText(t, "--config", cfg)
	t.Logf("cluster status:\n%s", text)
	if !strings.Contains(text, "leader") || strings.Count(text, " UP ") != 3 {
		t.Errorf("text output: want 3 nodes UP and a controller leader:\n%s", text)
	}

	var victim int32
	for _, p := range rep.Partitions {
		if p.Topic == topic && p.Partition == 0 {
			victim = p.Leader
		}
	}
	procs[victim-1].Kill()
	t.Logf("SIGKILLed node %d, leader of %s/0", victim, topic)
	// --admin with one survivor: the others are found through its view.
	survivor := procs[victim%3].AdminAddr()
	wait.For(t, time.Minute, func() error {
		return checkStatus(statusJSON(t, "--admin", survivor), topic, victim)
	})
	text = statusText(t, "--config", cfg)
	t.Logf("cluster status after the kill:\n%s", text)
	if !strings.Contains(text, fmt.Sprintf("\n%d     DOWN", victim)) {
		t.Errorf("text output: want node %d DOWN:\n%s", victim, text)
	}

	for i, p := range procs {
		if int32(i+1) != victim {
			p.Kill()
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"cluster", "status", "--config", cfg, "--timeout", "500ms"}, &out, &errb); code != exitFailure ||
		!strings.Contains(errb.String(), "no node answered") {
		t.Errorf("with every node down: exit %d, stderr %q, stdout %q", code, errb.String(), out.String())
	}
}

// checkStatus: every node but down UP, down (0: none) DOWN, one
// controller leader that is up, and every partition (the test topic's
// three among them) led by a node that is up, with the leader's lag for
// each replica.
func checkStatus(rep statusReport, topic string, down int32) error {
	if len(rep.Nodes) != 3 {
		return fmt.Errorf("%d nodes: %+v", len(rep.Nodes), rep.Nodes)
	}
	controllers := 0
	for _, n := range rep.Nodes {
		if n.Up == (n.ID == down) {
			return fmt.Errorf("node %d: up %v (%s)", n.ID, n.Up, n.Note)
		}
		if n.Controller {
			controllers++
		}
	}
	if controllers != 1 || rep.ControllerID <= 0 || rep.ControllerID == down {
		return fmt.Errorf("controller %d, %d nodes flagged controller", rep.ControllerID, controllers)
	}
	mine := 0
	for _, p := range rep.Partitions {
		if p.Leader <= 0 || p.Leader == down {
			return fmt.Errorf("%s/%d: leader %d", p.Topic, p.Partition, p.Leader)
		}
		if len(p.Lag) != len(p.Replicas) || p.Term < 1 {
			return fmt.Errorf("%s/%d: term %d, replicas %v, lag %+v", p.Topic, p.Partition, p.Term, p.Replicas, p.Lag)
		}
		if p.Topic == topic {
			mine++
			if len(p.Replicas) != 3 {
				return fmt.Errorf("%s/%d: replicas %v", p.Topic, p.Partition, p.Replicas)
			}
		}
	}
	if mine != 3 {
		return fmt.Errorf("%d partitions of %s in %+v", mine, topic, rep.Partitions)
	}
	return nil
}

func statusJSON(t *testing.T, args ...string) statusReport {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"cluster", "status", "--json"}, args...), &out, &errb); code != exitOK {
		t.Fatalf("cluster status %v: exit %d: %s", args, code, errb.String())
	}
	var rep statusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("cluster status --json: %v in %s", err, out.String())
	}
	return rep
}

func statusText(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"cluster", "status"}, args...), &out, &errb); code != exitOK {
		t.Fatalf("cluster status %v: exit %d: %s", args, code, errb.String())
	}
	return out.String()
}
