package scenario

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// Raw requests: the runner speaks to one node at a time, so that a step
// says which node answered what (a follower's NOT_LEADER_OR_FOLLOWER, an
// isolated leader's timeout), which a client following leaders hides.

// rawClient is a client seeded with every node in id order; its seed
// brokers are how a request goes to one node. Produce and Fetch stop at
// v12, the last versions that name topics (v13 uses topic ids).
func (r *runner) rawClient() *kgo.Client {
	if r.raw == nil {
		versions := kversion.Stable()
		versions.SetMaxKeyVersion(0, 12)
		versions.SetMaxKeyVersion(1, 12)
		cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(r.cluster().Seeds(), ",")...),
			kgo.MaxVersions(versions), kgo.DialTimeout(time.Second), kgo.RequestRetries(0),
			kgo.RequestTimeoutOverhead(2*time.Second))
		if err != nil {
			r.bad("client: %v", err)
		}
		r.raw = cl
	}
	return r.raw
}

// request sends req to node id alone.
func (r *runner) request(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	seeds := r.rawClient().SeedBrokers()
	if id < 1 || int(id) > len(seeds) {
		return nil, fmt.Errorf("no node %d", id)
	}
	return seeds[id-1].Request(ctx, req)
}

// batch encodes values as one uncompressed magic-2 record batch, each
// record keyed key (nil: no key). pid -1 is a producer without
// idempotence.
func batch(pid int64, epoch int16, seq int32, key []byte, values []string) []byte {
	recs := make([]protocol.Record, len(values))
	for i, v := range values {
		recs[i] = protocol.Record{Key: key, Value: []byte(v)}
	}
	return protocol.BuildProducerBatch(pid, epoch, seq, recs, time.Now().UnixMilli())
}

// produceOnce sends one batch to node id and returns the partition's
// answer: its base offset, or the error (a kerr.Error for an error code).
func (r *runner) produceOnce(id int32, topic string, p int32, acks int16, timeout time.Duration, b []byte) (int64, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = int32(timeout / time.Millisecond)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = p
	rp.Records = b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	resp, err := r.request(ctx, id, req)
	if err != nil {
		return 0, err
	}
	if acks == 0 {
		return -1, nil
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("produce response for %d topics", len(pr.Topics))
	}
	part := pr.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
		return 0, err
	}
	return part.BaseOffset, nil
}

// fetchedRecord is one record read back.
type fetchedRecord struct {
	offset     int64
	key, value []byte
}

// fetch reads topic/p on node id from offset up to the node's high
// watermark (Fetch v12: a follower serves up to its own), and returns the
// records and that high watermark.
func (r *runner) fetch(id int32, topic string, p int32, from int64) ([]fetchedRecord, int64, error) {
	var out []fetchedRecord
	next := from
	for {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MaxBytes = 8 << 20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.FetchOffset = next
		rp.PartitionMaxBytes = 4 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := r.request(ctx, id, req)
		cancel()
		if err != nil {
			return nil, 0, err
		}
		fr := resp.(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(fr.ErrorCode); err != nil {
			return nil, 0, err
		}
		if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
			return nil, 0, fmt.Errorf("fetch response for %d topics", len(fr.Topics))
		}
		part := fr.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
			return nil, 0, err
		}
		recs, err := decodeBatches(part.RecordBatches)
		if err != nil {
			return nil, 0, err
		}
		progressed := false
		for _, rec := range recs {
			if rec.offset >= next && rec.offset < part.HighWatermark {
				out = append(out, rec)
				next = rec.offset + 1
				progressed = true
			}
		}
		if next >= part.HighWatermark {
			return out, part.HighWatermark, nil
		}
		if !progressed {
			return nil, 0, fmt.Errorf("fetch at %d below high watermark %d returned nothing", next, part.HighWatermark)
		}
	}
}

// decodeBatches splits fetched bytes into records; a partial batch at the
// end (the fetch's size limit) is left for the next fetch.
func decodeBatches(b []byte) ([]fetchedRecord, error) {
	var out []fetchedRecord
	for len(b) >= 12 {
		size := int(int32(binary.BigEndian.Uint32(b[8:]))) + 12
		if size > len(b) {
			break
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b[:size]); err != nil {
			return nil, err
		}
		b = b[size:]
		if rb.Attributes&0x07 != 0 {
			return nil, errors.New("compressed batch: scripts produce uncompressed ones")
		}
		recs := rb.Records
		for i := range int(rb.NumRecords) {
			n, w := binary.Varint(recs)
			if w <= 0 || int(n)+w > len(recs) {
				return nil, fmt.Errorf("record %d of batch at %d: bad length", i, rb.FirstOffset)
			}
			var rec kmsg.Record
			if err := rec.ReadFrom(recs[:w+int(n)]); err != nil {
				return nil, err
			}
			recs = recs[w+int(n):]
			out = append(out, fetchedRecord{offset: rb.FirstOffset + int64(rec.OffsetDelta), key: rec.Key, value: rec.Value})
		}
	}
	return out, nil
}

// errName is how a step writes an error: Kafka's name for a code
// (NOT_LEADER_OR_FOLLOWER), else the error's text.
func errName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		if ke.Code == kerr.NotLeaderForPartition.Code {
			return "NOT_LEADER_OR_FOLLOWER"
		}
		return ke.Message
	}
	return err.Error()
}

// notWritten errors are those a client retries on another node or
// later: nothing was written.
func notWritten(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, kerr.NotLeaderForPartition), errors.Is(err, kerr.LeaderNotAvailable),
		errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.NotEnoughReplicas),
		errors.Is(err, kerr.FencedLeaderEpoch), errors.Is(err, kerr.UnknownLeaderEpoch):
		return true
	}
	var ke *kerr.Error
	return !errors.As(err, &ke) && isDialError(err)
}

// isDialError: the request never left (the node is down or paused
// before the connection was made).
func isDialError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "dial tcp") || strings.Contains(s, "unable to dial")
}
