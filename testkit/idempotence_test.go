package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestIdempotentProduce drives the producer-state rules with hand-built
// requests sent through a kgo client: a retried Produce (same producer id,
// epoch and sequence) is answered with the first attempt's base offset and
// written once; a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER; once the
// producer wrote with a newer epoch, the older epoch is
// INVALID_PRODUCER_EPOCH. Refused batches leave the log untouched.
func TestIdempotentProduce(t *testing.T) {
	tg := StartTarget(t)
	const topic = "idempotence"
	CreateTopic(t, tg.Addr(), topic, 1, nil)

	// Produce v13 names topics by id; these requests name them.
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(0, 12)
	cl := NewClient(t, tg.Addr(), kgo.MaxVersions(versions))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	initReq := kmsg.NewPtrInitProducerIDRequest()
	initReq.TransactionTimeoutMillis = 60000
	initResp, err := initReq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("InitProducerId: %v", err)
	}
	if err := kerr.ErrorForCode(initResp.ErrorCode); err != nil {
		t.Fatalf("InitProducerId: %v", err)
	}
	pid, epoch := initResp.ProducerID, initResp.ProducerEpoch
	if pid < 0 || epoch < 0 {
		t.Fatalf("InitProducerId gave producer id %d epoch %d", pid, epoch)
	}

	produce := func(epoch int16, seq int32, vals ...[]byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		batch := rawBatch(pid, epoch, seq, time.Now().UnixMilli(), vals...)
		return produceRetrying(t, func() kmsg.ProduceResponseTopicPartition {
			resp, err := produceRequest(topic, 0, -1, batch).RequestWith(ctx, cl)
			if err != nil {
				t.Fatalf("Produce (epoch %d, sequence %d): %v", epoch, seq, err)
			}
			return producePartition(t, resp)
		})
	}
	expectEnd := func(want int64, why string) {
		t.Helper()
		if got := endOffsets(t, tg.Addr(), topic)[0]; got != want {
			t.Fatalf("%s: high watermark %d, want %d", why, got, want)
		}
	}

	first := values("first", 3)
	a := produce(epoch, 0, first...)
	b := produce(epoch, 0, first...) // the retry: same id, epoch, sequence
	if a.ErrorCode != 0 || b.ErrorCode != 0 {
		t.Fatalf("produce and its retry: %v, %v; want both to succeed", kerr.ErrorForCode(a.ErrorCode), kerr.ErrorForCode(b.ErrorCode))
	}
	if a.BaseOffset != 0 || b.BaseOffset != a.BaseOffset {
		t.Fatalf("base offsets %d then %d, want 0 both times", a.BaseOffset, b.BaseOffset)
	}
	expectEnd(3, "after a produce and its retry")
	got := consumeAll(t, tg.Addr(), topic, map[int32]int64{0: 3})
	for i, r := range got[0] {
		if string(r.Value) != string(first[i]) {
			t.Fatalf("offset %d holds %q, want %q", r.Offset, r.Value, first[i])
		}
	}

	// The next sequence is 3; 8 leaves a gap.
	if gap := produce(epoch, 8, values("gap", 1)...); gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: got %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(gap.ErrorCode))
	}
	expectEnd(3, "after the refused sequence gap")

	// An idempotent producer may bump its own epoch; sequences start over.
	if bumped := produce(epoch+1, 0, values("bumped", 1)...); bumped.ErrorCode != 0 || bumped.BaseOffset != 3 {
		t.Fatalf("epoch %d sequence 0: %v at base offset %d, want success at 3", epoch+1, kerr.ErrorForCode(bumped.ErrorCode), bumped.BaseOffset)
	}
	if stale := produce(epoch, 3, values("stale", 1)...); stale.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("old epoch %d after %d: got %v, want INVALID_PRODUCER_EPOCH", epoch, epoch+1, kerr.ErrorForCode(stale.ErrorCode))
	}
	expectEnd(4, "after the refused stale epoch")
}
