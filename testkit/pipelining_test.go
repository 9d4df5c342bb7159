package testkit

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestPipelining writes 50 requests on one connection before reading any
// answer, as clients do: ApiVersions, Metadata, Produce acks=1 and Produce
// acks=0 in turn. The answers must come back in request order, one per
// request except acks=0, which gets none; the acks=0 batches are still
// written.
func TestPipelining(t *testing.T) {
	tg := StartTarget(t)
	const topic = "pipelining"
	CreateTopic(t, tg.Addr(), topic, 1, nil)
	c := dialRaw(t, tg.Addr())

	// One answered write first, so that the pipelined ones don't race the
	// new partition's leader election (a client would retry those; a
	// pipeline cannot).
	warm := produceRetrying(t, func() kmsg.ProduceResponseTopicPartition {
		batch := rawBatch(-1, -1, -1, time.Now().UnixMilli(), []byte("warm-up"))
		return producePartition(t, c.roundTrip(produceRequest(topic, 0, 1, batch)).(*kmsg.ProduceResponse))
	})
	if warm.ErrorCode != 0 {
		t.Fatalf("warm-up Produce: %v", kerr.ErrorForCode(warm.ErrorCode))
	}

	type sent struct {
		corr int32
		resp kmsg.Response // nil: acks=0, no answer expected
	}
	var (
		buf      []byte
		expected []sent
		batches  = int64(1) // the warm-up
	)
	for i := 0; i < 50; i++ {
		var req kmsg.Request
		answered := true
		switch i % 4 {
		case 0:
			r := kmsg.NewPtrApiVersionsRequest()
			r.ClientSoftwareName, r.ClientSoftwareVersion = "testkit", "1"
			req = r
		case 1:
			r := kmsg.NewPtrMetadataRequest()
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(topic)
			r.Topics = append(r.Topics, mt)
			req = r
		case 2, 3:
			acks := int16(1)
			if i%4 == 3 {
				acks, answered = 0, false
			}
			req = produceRequest(topic, 0, acks, rawBatch(-1, -1, -1, time.Now().UnixMilli(), []byte(fmt.Sprintf("pipelined-%d", i))))
			batches++
		}
		var corr int32
		buf, corr = c.frame(buf, req)
		if answered {
			resp := req.ResponseKind()
			resp.SetVersion(req.GetVersion())
			expected = append(expected, sent{corr, resp})
		}
	}
	// The last request (i=49) is answered, so an answer wrongly sent for
	// any acks=0 request would show up out of place below.
	c.write(buf)

	lastOffset := warm.BaseOffset
	for n, e := range expected {
		got := c.recv(e.resp)
		if got != e.corr {
			t.Fatalf("answer #%d has correlation id %d, want %d (answers must follow request order, none for acks=0)", n, got, e.corr)
		}
		switch r := e.resp.(type) {
		case *kmsg.ApiVersionsResponse:
			if r.ErrorCode != 0 {
				t.Fatalf("pipelined ApiVersions: %v", kerr.ErrorForCode(r.ErrorCode))
			}
		case *kmsg.MetadataResponse:
			if len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 {
				t.Fatalf("pipelined Metadata: %+v", r.Topics)
			}
		case *kmsg.ProduceResponse:
			p := producePartition(t, r)
			if p.ErrorCode != 0 {
				t.Fatalf("pipelined Produce: %v", kerr.ErrorForCode(p.ErrorCode))
			}
			if p.BaseOffset <= lastOffset {
				t.Fatalf("pipelined Produce answered base offset %d after %d", p.BaseOffset, lastOffset)
			}
			lastOffset = p.BaseOffset
		}
	}
	// Nothing else may arrive: the acks=0 requests have no answer.
	if _, err := c.readFrame(300 * time.Millisecond); err == nil {
		t.Fatalf("an extra answer arrived after the %d expected ones", len(expected))
	}

	wait.For(t, 15*time.Second, func() error {
		if end := endOffsets(t, tg.Addr(), topic)[0]; end != batches {
			return fmt.Errorf("high watermark %d, want %d (acks=1 and acks=0 batches, one record each)", end, batches)
		}
		return nil
	})
}
