package testkit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// saramaHandler marks every record it is given; sarama's auto-commit sends
// the marks every interval and once more when the group closes.
type saramaHandler struct {
	seen *seenRecords

	mu     sync.Mutex
	claims map[int32]bool // partitions claimed in any session
}

func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ps := range s.Claims() {
		for _, p := range ps {
			h.claims[p] = true
		}
	}
	return nil
}

func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		h.seen.add("sarama", msg.Partition, msg.Offset)
		s.MarkMessage(msg, "")
	}
	return nil
}

// TestGroupSarama consumes a topic with an IBM/sarama ConsumerGroup (at
// protocol version 2.8, not sarama's older default): every record is
// received, and the marked offsets are committed (the group's committed
// offsets equal the end offsets after Close).
// TestGroupSarama runs sarama's ConsumerGroup at its default protocol
// version (2.8) and at 2.1, which older applications pin and which uses
// older versions of every group API.
func TestGroupSarama(t *testing.T) {
	for _, v := range []sarama.KafkaVersion{sarama.DefaultVersion, sarama.V2_1_0_0} {
		t.Run(v.String(), func(t *testing.T) { testGroupSarama(t, v) })
	}
}

func testGroupSarama(t *testing.T, version sarama.KafkaVersion) {
	const partitions = 4
	f := newGroupFixture(t, classicGroupAPIs, partitions)
	ends := f.produce("sarama", 1000, 40)

	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = "testkit-sarama"
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = true
	cfg.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{f.addr}, f.group, cfg)
	if err != nil {
		t.Fatalf("sarama consumer group: %v", err)
	}
	closed := false
	closeGroup := func() {
		if !closed {
			closed = true
			if err := cg.Close(); err != nil {
				t.Errorf("sarama consumer group close: %v", err)
			}
		}
	}
	t.Cleanup(closeGroup)

	var (
		errMu   sync.Mutex
		lastErr error
	)
	go func() {
		for err := range cg.Errors() {
			errMu.Lock()
			lastErr = err
			errMu.Unlock()
		}
	}()

	seen := newSeenRecords()
	h := &saramaHandler{seen: seen, claims: map[int32]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() {
		// Consume returns at every rebalance; call it again until the
		// test is done with the group.
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{f.topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()
	wait.For(t, 45*time.Second, func() error {
		if m := seen.missing(zeroOffsets(partitions), ends); m != "" {
			errMu.Lock()
			defer errMu.Unlock()
			return fmt.Errorf("sarama has not received every record: %s (last group error: %v)", m, lastErr)
		}
		return nil
	})
	cancel()
	if err := <-consumed; err != nil {
		t.Fatalf("sarama Consume: %v", err)
	}
	closeGroup()
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := int32(0); p < partitions; p++ {
		if !h.claims[p] {
			t.Errorf("partition %d was never claimed by the sarama member", p)
		}
	}
	f.waitCommitted(ends, 30*time.Second)
}

// TestGroupKafkaGo consumes a topic with a segmentio/kafka-go Reader in a
// group (kafka-go speaks old group API versions: JoinGroup v1, SyncGroup v0,
// OffsetCommit v2, ...): every record is received, and CommitMessages
// commits them (the group's committed offsets equal the end offsets).
func TestGroupKafkaGo(t *testing.T) {
	const partitions = 4
	f := newGroupFixture(t, classicGroupAPIs, partitions)
	ends := f.produce("kafka-go", 1000, 40)

	// kafka-go logs from its own goroutines, which may outlive the test:
	// keep the lines and show them on failure instead of calling t.Logf.
	errLog := &lineLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kafka-go errors:\n%s", errLog.String())
		}
	})
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:          []string{f.addr},
		GroupID:          f.group,
		Topic:            f.topic,
		StartOffset:      kafka.FirstOffset,
		MinBytes:         1,
		MaxBytes:         1 << 20,
		MaxWait:          250 * time.Millisecond,
		CommitInterval:   0, // CommitMessages commits synchronously
		JoinGroupBackoff: 250 * time.Millisecond,
		ErrorLogger:      kafka.LoggerFunc(errLog.printf),
	})
	closed := false
	closeReader := func() {
		if !closed {
			closed = true
			if err := r.Close(); err != nil {
				t.Errorf("kafka-go reader close: %v", err)
			}
		}
	}
	t.Cleanup(closeReader)

	seen := newSeenRecords()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var batch []kafka.Message
	commit := func() {
		if len(batch) == 0 {
			return
		}
		if err := r.CommitMessages(ctx, batch...); err != nil {
			t.Fatalf("kafka-go CommitMessages of %d messages: %v (reader stats: %+v)", len(batch), err, r.Stats())
		}
		batch = batch[:0]
	}
	for seen.missing(zeroOffsets(partitions), ends) != "" {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go FetchMessage: %v; not yet received: %s", err, seen.missing(zeroOffsets(partitions), ends))
		}
		seen.add("kafka-go", int32(m.Partition), m.Offset)
		batch = append(batch, m)
		if len(batch) >= 100 {
			commit()
		}
	}
	commit()
	closeReader()
	f.waitCommitted(ends, 30*time.Second)
}

// lineLog collects log lines from any goroutine.
type lineLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lineLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
