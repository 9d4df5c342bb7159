package actors

// ListOffsets v1-v10: earliest (-2, and -4 earliest-local: there is no
// tiered storage), latest (-1), max timestamp (-3), and the first offset
// whose record timestamp is at or after a given time. The time lookups
// read segments, so the request is served off the connection actor.
// With read_committed (isolation level 1, v2+) latest is the last stable
// offset, and a timestamp lookup finds nothing at or past it, as Kafka's
// lastFetchableOffset.

import (
	"errors"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/storage"
)

func init() { register(kmsg.ListOffsets, handleListOffsets) }

func handleListOffsets(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.ListOffsetsRequest)
	c.async(ctx, r, func() kmsg.Response { return c.b.listOffsets(req) })
}

func (b *Broker) listOffsets(req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
			h := b.replicas.get(rt.Topic, rp.Partition)
			switch {
			case !b.partitionExists(rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case servingErr(h) != nil:
				sp.ErrorCode = servingErr(h).Code
			default:
				if sp.ErrorCode = checkLeaderEpoch(h, rp.CurrentLeaderEpoch); sp.ErrorCode == 0 {
					sp.ErrorCode = lookupOffset(h, rp.Timestamp, req.Version >= 2 && req.IsolationLevel == 1, &sp)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func lookupOffset(h *partitionHandle, ts int64, committed bool, sp *kmsg.ListOffsetsResponseTopicPartition) int16 {
	v := h.sm.View()
	epoch := h.replica.Term()
	fetchable := v.HighWatermark()
	if committed {
		fetchable = lastStable(h, v)
	}
	switch ts {
	case -1: // latest
		sp.Offset, sp.LeaderEpoch = fetchable, epoch
		return 0
	case -2, -4, -5: // earliest; earliest local; (no tiered storage)
		sp.Offset, sp.LeaderEpoch = v.LogStartOffset(), epoch
		return 0
	}
	var batch []byte
	var found bool
	var err error
	if ts == -3 {
		batch, found, err = v.MaxTimestampBatch()
	} else if ts >= 0 {
		batch, found, err = v.OffsetForTimestamp(ts)
	} else {
		return kerr.InvalidRequest.Code
	}
	if err != nil {
		return readErrCode(err)
	}
	if !found {
		return 0 // -1, -1: no record at or after ts
	}
	h0, err := protocol.ParseBatchHeader(batch)
	if err != nil {
		return kerr.CorruptMessage.Code
	}
	offs, tss, err := protocol.RecordTimestamps(batch)
	if err != nil || len(offs) == 0 {
		return kerr.CorruptMessage.Code
	}
	best := -1
	for i, t := range tss {
		if ts == -3 {
			if best < 0 || t > tss[best] {
				best = i
			}
		} else if t >= ts {
			best = i
			break
		}
	}
	// With no record found, the batch's max timestamp qualified but no
	// record did (a producer that wrote an inconsistent header): use the
	// batch.
	off, t := h0.BaseOffset, h0.MaxTimestamp
	if best >= 0 {
		off, t = offs[best], tss[best]
	}
	if off >= fetchable {
		return 0 // not readable at this isolation level: -1, -1
	}
	sp.Offset, sp.Timestamp = off, t
	sp.LeaderEpoch = h0.PartitionLeaderEpoch
	return 0
}

func readErrCode(err error) int16 {
	if errors.Is(err, storage.ErrOffsetOutOfRange) {
		return kerr.OffsetOutOfRange.Code
	}
	return kerr.UnknownServerError.Code
}
