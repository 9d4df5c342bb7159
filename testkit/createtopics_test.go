package testkit

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCreateTopicsTooManyPartitions: a CreateTopics asking for more
// than 10000 partitions in all is refused whole with POLICY_VIOLATION, as
// KRaft does, instead of the node allocating 2^31-1 partitions and dying.
func TestCreateTopicsTooManyPartitions(t *testing.T) {
	tg := StartTarget(t)
	tg.SkipOnKfake(t, "KRaft's per-request partition cap")
	cl := NewClient(t, tg.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	for _, c := range []struct {
		name       string
		partitions int32
	}{{"too-many-partitions-huge", math.MaxInt32}, {"too-many-partitions-small", 1}} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = c.name, c.partitions, 1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	for _, st := range resp.Topics {
		if st.ErrorCode != kerr.PolicyViolation.Code {
			t.Fatalf("topic %s: %v, want POLICY_VIOLATION", st.Topic, kerr.ErrorForCode(st.ErrorCode))
		}
	}
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	name := "too-many-partitions-small"
	mt.Topic = &name
	md.Topics = append(md.Topics, mt)
	mresp, err := md.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("Metadata after the refused create: %v", err)
	}
	if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("too-many-partitions-small after a refused request: %+v, want UNKNOWN_TOPIC_OR_PARTITION", mresp.Topics)
	}
}
