package testkit

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// ReplicaLog is one replica's copy of a partition, as its node serves it
// to a consumer (Fetch v11+, which any replica serves up to its own high
// watermark): what a test compares to tell that replicas converged.
type ReplicaLog struct {
	HighWatermark  int64
	LogStartOffset int64
	// Batches are the partition's record batches from the log start to
	// the high watermark, byte for byte as stored (replicas apply the
	// same entries into the same bytes).
	Batches []byte
}

// ReadReplica reads node id's replica of topic's partition p from its
// log start to its high watermark, asking that node alone.
func (c *clusterCore) ReadReplica(id int32, topic string, p int32) (ReplicaLog, error) {
	c.check(id)
	md, err := c.metadataOf(id, topic)
	if err != nil {
		return ReplicaLog{}, err
	}
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
		return ReplicaLog{}, fmt.Errorf("node %d: no metadata for %s", id, topic)
	}
	topicID := md.Topics[0].TopicID
	var out ReplicaLog
	offset := int64(0)
	first := true
	for {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MaxBytes = 64 << 20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		// Both: the version kgo negotiates decides which goes out.
		rt.Topic, rt.TopicID = topic, topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 32<<20
		rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := c.probe.SeedBrokers()[id-1].Request(ctx, req)
		cancel()
		if err != nil {
			return ReplicaLog{}, fmt.Errorf("node %d: fetch: %w", id, err)
		}
		fr := resp.(*kmsg.FetchResponse)
		if fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
			return ReplicaLog{}, fmt.Errorf("node %d: fetch: error %d, %d topics", id, fr.ErrorCode, len(fr.Topics))
		}
		part := fr.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
			return ReplicaLog{}, fmt.Errorf("node %d: fetch %s-%d at %d: %w", id, topic, p, offset, err)
		}
		if first {
			out.HighWatermark, out.LogStartOffset = part.HighWatermark, part.LogStartOffset
			offset, first = part.LogStartOffset, false
			if offset > 0 {
				continue // the first fetch asked at 0, below the log start
			}
		}
		whole, next := wholeBatches(part.RecordBatches)
		out.Batches = append(out.Batches, whole...)
		if len(whole) == 0 || next >= out.HighWatermark {
			return out, nil
		}
		offset = next
	}
}

// wholeBatches is the prefix of b that holds whole record batches, and
// the offset after its last.
func wholeBatches(b []byte) ([]byte, int64) {
	n, next := 0, int64(0)
	for len(b)-n >= 61 { // a batch header
		size := 12 + int(binary.BigEndian.Uint32(b[n+8:]))
		if len(b)-n < size {
			break
		}
		base := int64(binary.BigEndian.Uint64(b[n:]))
		next = base + int64(binary.BigEndian.Uint32(b[n+23:])) + 1
		n += size
	}
	return b[:n], next
}

// ReplicasAgree checks that every reachable replica of topic's
// partition p is at the same high watermark with the same bytes: nil once
// the replicas have converged (wait for it with Eventually).
func (c *clusterCore) ReplicasAgree(topic string, p int32) error {
	best, _, err := c.leaderSeen(topic, p)
	if best.replicas == nil {
		return fmt.Errorf("%s-%d: no replica set known: %v", topic, p, err)
	}
	var ref ReplicaLog
	var refID int32
	for _, id := range best.replicas {
		if !c.reachable(id) {
			continue
		}
		got, err := c.ReadReplica(id, topic, p)
		if err != nil {
			return err
		}
		if refID == 0 {
			ref, refID = got, id
			continue
		}
		if got.HighWatermark != ref.HighWatermark || string(got.Batches) != string(ref.Batches) {
			return fmt.Errorf("%s-%d: node %d at high watermark %d (%d bytes) differs from node %d at %d (%d bytes)",
				topic, p, id, got.HighWatermark, len(got.Batches), refID, ref.HighWatermark, len(ref.Batches))
		}
	}
	if refID == 0 {
		return fmt.Errorf("%s-%d: no replica reachable", topic, p)
	}
	return nil
}

// ProduceTo sends one Produce request with acks=all to node id alone,
// with no retries and no producer id, holding values as one batch for
// topic's partition p, and returns the batch's offset or the error that
// node answered (or the request's own, after within). It tells what one
// node does with a write, where a client would look for the leader
// elsewhere: a node cut off from its peers must acknowledge nothing.
func (c *clusterCore) ProduceTo(id int32, topic string, p int32, within time.Duration, values ...[]byte) (int64, error) {
	c.check(id)
	md, err := c.metadataOf(id, topic)
	if err != nil {
		return -1, err
	}
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
		return -1, fmt.Errorf("node %d: no metadata for %s", id, topic)
	}
	recs := make([]protocol.Record, len(values))
	for i, v := range values {
		recs[i] = protocol.Record{Value: v}
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = int32(within.Milliseconds())
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, md.Topics[0].TopicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, protocol.BuildBatch(recs, time.Now().UnixMilli())
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), within+2*time.Second)
	defer cancel()
	resp, err := c.probe.SeedBrokers()[id-1].Request(ctx, req)
	if err != nil {
		return -1, fmt.Errorf("node %d: produce: %w", id, err)
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		return -1, fmt.Errorf("node %d: produce: %d topics in the answer", id, len(pr.Topics))
	}
	part := pr.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
		return -1, err
	}
	return part.BaseOffset, nil
}
