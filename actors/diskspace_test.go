package actors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// Below the free-space floor produce is refused with KAFKA_STORAGE_ERROR
// and reads go on; above it, produce is taken again.
func TestProduceRefusedBelowDiskFloor(t *testing.T) {
	dir := t.TempDir()
	start := func(floor int64) *Broker {
		t.Helper()
		cfg := cluster.Default()
		cfg.DataDir = filepath.Join(dir, "data")
		cfg.KafkaAddr = "127.0.0.1:0"
		cfg.MinFreeDiskBytes = floor
		b, err := StartBroker(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := func(b *Broker, v string) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("floor"), kgo.AllowAutoTopicCreation(),
			kgo.RecordRetries(2), kgo.RetryTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr()
	}

	b := start(-1) // no floor
	if err := produce(b, "first"); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b = start(math.MaxInt64) // more free space than any disk has
	if err := produce(b, "refused"); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("produce below the floor: %v, want KAFKA_STORAGE_ERROR", err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("floor"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	fs := cons.PollFetches(ctx)
	cons.Close()
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "first" {
		t.Fatalf("read below the floor: %d records, errors %v", len(recs), fs.Errors())
	}
	b.Close()

	b = start(0) // the default floor: this disk has room
	defer b.Close()
	if err := produce(b, "second"); err != nil {
		t.Fatalf("produce with room again: %v", err)
	}
}
