package testkit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDeleteTopicWhileProducing deletes a topic with tiny segments while a
// producer keeps writing to it, several times over: the replica's files go
// away under it mid-roll, which must end that replica, not the node. The
// broker process is a child, so a node that exits fails the final check.
func TestDeleteTopicWhileProducing(t *testing.T) {
	SkipUnlessChronik(t, "chronik-specific: kfake has no files to lose")
	p := StartProcess(t, t.TempDir())
	seg := "1024"
	for round := 0; round < 5; round++ {
		topic := fmt.Sprintf("delete-while-producing-%d", round)
		CreateTopic(t, p.Addr(), topic, 2, map[string]*string{"segment.bytes": &seg})
		cl := NewClient(t, p.Addr(), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		acked := make(chan struct{}, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cl.Produce(ctx, &kgo.Record{Value: make([]byte, 300)}, func(_ *kgo.Record, err error) {
					if err == nil {
						select {
						case acked <- struct{}{}:
						default:
						}
					}
				})
			}
		}()
		select {
		case <-acked:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: no produce acknowledged", round)
		}
		adm := kadm.NewClient(cl)
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := adm.DeleteTopics(dctx, topic); err != nil {
			t.Fatalf("round %d: delete: %v", round, err)
		}
		dcancel()
		cancel()
		wg.Wait()
		cl.Close()
	}
	CreateTopic(t, p.Addr(), "after-deletes", 1, nil)
	assertServes(t, p.Addr(), "after-deletes")
}
