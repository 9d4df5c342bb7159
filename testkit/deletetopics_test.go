package testkit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestDeleteTopics deletes a topic holding records with a raw DeleteTopics
// and waits until Metadata no longer lists it.
func TestDeleteTopics(t *testing.T) {
	tg := StartTarget(t)
	const topic = "delete-topics"
	CreateTopic(t, tg.Addr(), topic, 1, nil)
	cl := NewClient(t, tg.Addr(), kgo.DefaultProduceTopic(topic))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 15000
	req.TopicNames = []string{topic}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, dt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("DeleteTopics: %v", err)
	}
	if len(resp.Topics) != 1 {
		t.Fatalf("DeleteTopics: %d topics in the answer, want 1", len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("DeleteTopics: %v", err)
	}
	wait.For(t, 30*time.Second, func() error {
		// All topics, so that asking cannot auto-create it again.
		md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		for _, mt := range md.Topics {
			if mt.Topic != nil && *mt.Topic == topic {
				return errors.New("deleted topic still listed in Metadata")
			}
		}
		return nil
	})
}
