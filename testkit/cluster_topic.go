package testkit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CreateClusterTopic creates topic on c with the given partitions and
// replication factor (-1 for the cluster's defaults), retrying while the
// cluster answers with retriable errors (a controller election), and
// waits until every partition has a leader that accepts writes
// (WaitForLeader).
func CreateClusterTopic(t testing.TB, c Cluster, topic string, partitions int32, rf int16) {
	t.Helper()
	cl, err := kgo.NewClient(ClientOpts(strings.Split(c.Seeds(), ",")...)...)
	if err != nil {
		t.Fatalf("testkit: client: %v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// A non-retriable error ends the wait at once: retrying cannot help.
	// Except INVALID_REPLICATION_FACTOR for a while: the replication
	// factor is checked against the nodes the answering node sees up,
	// and right after a (re)start it may not have heard from all of them
	// yet, as with Kafka brokers that have not registered yet.
	var refused error
	first := time.Now()
	c.Eventually(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := adm.CreateTopic(ctx, partitions, rf, nil, topic)
		if err == nil {
			err = res.Err
		}
		switch {
		case err == nil || errors.Is(err, kerr.TopicAlreadyExists):
			// Exists: an earlier try went through after its answer was lost.
			return nil
		case errors.Is(err, kerr.InvalidReplicationFactor) && time.Since(first) < 10*time.Second:
			return err
		case !kerr.IsRetriable(err) && !errors.Is(err, kerr.NotController) && !errors.Is(err, context.DeadlineExceeded):
			refused = err
			return nil
		}
		return err
	})
	if refused != nil {
		t.Fatalf("testkit: create topic %s: %v", topic, refused)
	}
	var n int
	c.Eventually(30*time.Second, func() error {
		md, err := adm.ListTopics(context.Background(), topic)
		if err != nil {
			return err
		}
		if err := md[topic].Err; err != nil {
			return err
		}
		n = len(md[topic].Partitions)
		return nil
	})
	for p := range int32(n) {
		c.WaitForLeader(topic, p)
	}
}
