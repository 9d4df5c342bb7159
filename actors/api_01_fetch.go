package actors

// Fetch v4+ (topic ids from v13). Reads happen off the connection actor, in
// a goroutine, through each partition's immutable read view; a fetch with
// fewer than MinBytes waits until a view changes or MaxWaitMs passes.
// Record bytes are the stored batches, byte for byte. Fetch sessions are
// declined (session id 0), which every client handles by sending full
// fetches; an unknown session id gets FETCH_SESSION_ID_NOT_FOUND.

import (
	"errors"
	"reflect"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/storage"
)

func init() { register(kmsg.Fetch, handleFetch) }

func handleFetch(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.FetchRequest)
	if req.Version >= 7 && req.SessionID != 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		c.respond(r, resp)
		return
	}
	c.async(ctx, r, func() kmsg.Response { return c.b.fetch(req) })
}

// fetch builds the response, waiting for data up to MaxWaitMs.
func (b *Broker) fetch(req *kmsg.FetchRequest) kmsg.Response {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		resp, size, waits := b.readFetch(req)
		wait := time.Until(deadline)
		if size >= int64(req.MinBytes) || wait <= 0 || len(waits) == 0 {
			return resp
		}
		// Park until any partition publishes a new view, or time is up.
		cases := make([]reflect.SelectCase, 0, len(waits)+1)
		timer := time.NewTimer(wait)
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)})
		for _, w := range waits {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w)})
		}
		reflect.Select(cases)
		timer.Stop()
	}
}

// readFetch reads every requested partition once. It returns the response,
// the record bytes in it, and the channels that signal new data for the
// partitions that were read without error.
func (b *Broker) readFetch(req *kmsg.FetchRequest) (*kmsg.FetchResponse, int64, []<-chan struct{}) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	md := b.controller.Metadata()
	maxBytes := int64(req.MaxBytes)
	if req.Version < 3 || maxBytes <= 0 {
		maxBytes = 1 << 62
	}
	var size int64
	var waits []<-chan struct{}
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name := rt.Topic
		unknownID := false
		if req.Version >= 13 {
			if t := md.TopicByID(rt.TopicID); t != nil {
				name = t.Name
			} else {
				unknownID = true
			}
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.PreferredReadReplica = -1
			// Empty, not null: librdkafka reads a null as a broken
			// message set, and v12+ clients expect empty too.
			sp.RecordBatches = []byte{}
			var h *partitionHandle
			if !unknownID {
				h = b.replicas.get(name, rp.Partition)
			}
			switch {
			case unknownID:
				sp.ErrorCode = kerr.UnknownTopicID.Code
			case h == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				v := h.sm.View()
				sp.ErrorCode = b.readPartition(h, v, rp, &sp, maxBytes-size, size == 0)
				size += int64(len(sp.RecordBatches))
				if sp.ErrorCode == 0 {
					waits = append(waits, v.Changed())
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, size, waits
}

func (b *Broker) readPartition(h *partitionHandle, v *storage.ReadView, rp kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition, room int64, first bool) int16 {
	if code := checkLeaderEpoch(h, rp.CurrentLeaderEpoch); code != 0 {
		return code
	}
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = v.HighWatermark(), v.HighWatermark(), v.LogStartOffset()
	limit := int64(rp.PartitionMaxBytes)
	if room < limit {
		limit = room
	}
	if limit <= 0 && !first {
		return 0
	}
	if limit <= 0 {
		limit = 1 // Read still returns one whole batch
	}
	data, err := v.Read(rp.FetchOffset, int32(min(limit, 1<<31-1)))
	switch {
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case err != nil:
		return kerr.UnknownServerError.Code
	}
	if !first && int64(len(data)) > limit {
		// Read returns at least one batch; only the first partition of a
		// response may go over the response's MaxBytes.
		return 0
	}
	if data != nil {
		sp.RecordBatches = data
	}
	return 0
}

// checkLeaderEpoch validates a client's view of the leader epoch as Kafka
// does: older is fenced, newer is unknown here; -1 skips the check.
func checkLeaderEpoch(h *partitionHandle, epoch int32) int16 {
	if epoch < 0 {
		return 0
	}
	cur := h.replica.Term()
	switch {
	case epoch < cur:
		return kerr.FencedLeaderEpoch.Code
	case epoch > cur:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}
