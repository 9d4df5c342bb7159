package testkit

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCodecsRoundTrip produces 10,000 keyed records with headers to a
// fresh 6-partition topic under each codec and reads them back: every
// record identical (key, value, headers, timestamp), in produce order per
// partition, at offsets 0..n-1 with no gap; and the stored batches still
// carry the producer's codec (the broker keeps the producer's bytes).
func TestCodecsRoundTrip(t *testing.T) {
	tg := StartTarget(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		attr  int16 // the codec bits of a record batch's attributes
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "codec-" + c.name
			const partitions, n = 6, 10000
			CreateTopic(t, tg.Addr(), topic, partitions, nil)

			sent := make([]*kgo.Record, n)
			for i := range sent {
				sent[i] = &kgo.Record{
					Key: []byte(fmt.Sprintf("key-%05d", i)),
					// Compressible, so that every codec really shrinks
					// the batches, with varying lengths.
					Value: []byte(fmt.Sprintf("%s-value-%05d-%s", c.name, i, strings.Repeat("abcdefgh", i%16))),
					Headers: []kgo.RecordHeader{
						{Key: "index", Value: []byte(fmt.Sprint(i))},
						{Key: "codec", Value: []byte(c.name)},
						{Key: "empty"},
					},
				}
			}
			produceAll(t, tg.Addr(), topic, sent, kgo.ProducerBatchCompression(c.codec))

			bySlot := map[[2]int64]int{} // (partition, offset) -> index in sent
			perPartition := map[int32]int64{}
			for i, r := range sent {
				bySlot[[2]int64{int64(r.Partition), r.Offset}] = i
				perPartition[r.Partition]++
			}
			ends := endOffsets(t, tg.Addr(), topic)
			for p := int32(0); p < partitions; p++ {
				if ends[p] != perPartition[p] {
					t.Errorf("partition %d: high watermark %d, acknowledged %d records", p, ends[p], perPartition[p])
				}
			}
			if t.Failed() {
				t.FailNow()
			}

			got := consumeAll(t, tg.Addr(), topic, ends)
			total := 0
			for p := int32(0); p < partitions; p++ {
				lastIndex := -1
				for j, r := range got[p] {
					total++
					if r.Offset != int64(j) {
						t.Fatalf("partition %d: record #%d has offset %d, want contiguous offsets from 0", p, j, r.Offset)
					}
					i, ok := bySlot[[2]int64{int64(p), r.Offset}]
					if !ok {
						t.Fatalf("partition %d offset %d: no record was acknowledged there", p, r.Offset)
					}
					if i <= lastIndex {
						t.Fatalf("partition %d offset %d: record %d after record %d, out of produce order", p, r.Offset, i, lastIndex)
					}
					lastIndex = i
					if err := sameRecord(sent[i], r); err != nil {
						t.Fatalf("partition %d offset %d (record %d): %v", p, r.Offset, i, err)
					}
				}
			}
			if total != n {
				t.Fatalf("consumed %d records, produced %d", total, n)
			}
			if got := storedCodec(t, tg.Addr(), topic); got != c.attr {
				t.Fatalf("first stored batch of partition 0 has codec %d, want %d (%s)", got, c.attr, c.name)
			}
		})
	}
}

// produceAll produces every record asynchronously on one client and fails
// the test unless all are acknowledged; the records carry their partition
// and offset afterwards.
func produceAll(t testing.TB, addr, topic string, recs []*kgo.Record, opts ...kgo.Opt) {
	t.Helper()
	cl := NewClient(t, addr, append([]kgo.Opt{kgo.DefaultProduceTopic(topic)}, opts...)...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce to %s: %v", topic, firstErr)
	}
}

func sameRecord(want, got *kgo.Record) error {
	if !bytes.Equal(want.Key, got.Key) {
		return fmt.Errorf("key %q, want %q", got.Key, want.Key)
	}
	if !bytes.Equal(want.Value, got.Value) {
		return fmt.Errorf("value %q, want %q", got.Value, want.Value)
	}
	if len(want.Headers) != len(got.Headers) {
		return fmt.Errorf("%d headers, want %d", len(got.Headers), len(want.Headers))
	}
	for i, h := range want.Headers {
		if g := got.Headers[i]; g.Key != h.Key || !bytes.Equal(g.Value, h.Value) {
			return fmt.Errorf("header %d is %s=%q, want %s=%q", i, g.Key, g.Value, h.Key, h.Value)
		}
	}
	if want.Timestamp.UnixMilli() != got.Timestamp.UnixMilli() {
		return fmt.Errorf("timestamp %d, want %d", got.Timestamp.UnixMilli(), want.Timestamp.UnixMilli())
	}
	return nil
}

// storedCodec fetches partition 0 from offset 0 with a raw Fetch and
// returns the codec bits of the first batch, as stored by the broker.
func storedCodec(t testing.TB, addr, topic string) int16 {
	t.Helper()
	c := dialRaw(t, addr)
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1 // no fetch session
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = 0
	fp.FetchOffset = 0
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp := c.roundTrip(req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("raw Fetch: error %d, topics %d", resp.ErrorCode, len(resp.Topics))
	}
	part := resp.Topics[0].Partitions[0]
	if part.ErrorCode != 0 || len(part.RecordBatches) < 61 {
		t.Fatalf("raw Fetch partition 0: error %d, %d bytes", part.ErrorCode, len(part.RecordBatches))
	}
	// The batch may be cut by the size limit; its 61-byte header is all
	// we need: magic at byte 16, attributes at 21.
	raw := part.RecordBatches
	if magic := int8(raw[16]); magic != 2 {
		t.Fatalf("stored batch has magic %d, want 2", magic)
	}
	return int16(binary.BigEndian.Uint16(raw[21:23])) & 0x07
}
