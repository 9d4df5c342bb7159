package actors

// Fetch v4+ (topic ids from v13, incremental fetch sessions from v7).
// Reads happen off the connection actor, in a goroutine, through each
// partition's immutable read view; a fetch with fewer than MinBytes waits
// until a view changes or MaxWaitMs passes. Record bytes are the stored
// batches, byte for byte.
//
// read_committed (isolation level 1, v4+) returns only batches below the
// last stable offset (LSO: the first offset of the oldest open
// transaction), with the aborted transactions in the range returned, so
// the consumer drops their batches. LastStableOffset is the LSO at either
// isolation level, on the leader and on a follower serving (KIP-392).

import (
	"errors"
	"reflect"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
	"github.com/chronik-actor/chronik-actor/storage"
)

func init() { register(kmsg.Fetch, handleFetch) }

// fetchTarget is one partition a fetch reads, from the request or from the
// fetch session.
type fetchTarget struct {
	topic       string
	topicID     [16]byte
	partition   int32
	offset      int64
	maxBytes    int32
	leaderEpoch int32
	// What the session last told the client, so an incremental response
	// can leave out partitions with nothing new.
	sentHW, sentLSO, sentStart int64
}

func handleFetch(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.FetchRequest)
	var sess *fetchSession
	var targets []*fetchTarget
	full := true
	if req.Version >= 7 && !(req.SessionID == 0 && req.SessionEpoch == -1) {
		var code int16
		sess, targets, full, code = c.b.sessions.resolve(req, c.b.controller.Metadata())
		if code != 0 {
			resp := req.ResponseKind().(*kmsg.FetchResponse)
			resp.ErrorCode = code
			c.respond(r, resp)
			return
		}
	} else {
		targets = requestTargetsFrom(req, c.b.controller.Metadata())
	}
	c.async(ctx, r, func() kmsg.Response { return c.b.fetch(req, sess, targets, full) })
}

func requestTargetsFrom(req *kmsg.FetchRequest, md *raftactor.Metadata) []*fetchTarget {
	var out []*fetchTarget
	for _, rt := range req.Topics {
		name := rt.Topic
		if req.Version >= 13 {
			name = ""
			if t := md.TopicByID(rt.TopicID); t != nil {
				name = t.Name
			}
		}
		for _, rp := range rt.Partitions {
			out = append(out, &fetchTarget{topic: name, topicID: rt.TopicID, partition: rp.Partition,
				offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, leaderEpoch: rp.CurrentLeaderEpoch,
				sentHW: -1, sentLSO: -1, sentStart: -1})
		}
	}
	return out
}

// fetch builds the response, waiting for data up to MaxWaitMs.
func (b *Broker) fetch(req *kmsg.FetchRequest, sess *fetchSession, targets []*fetchTarget, full bool) kmsg.Response {
	if sess != nil {
		// One fetch at a time per session: clients never overlap them,
		// and the sent-values bookkeeping must not interleave.
		sess.mu.Lock()
		defer sess.mu.Unlock()
	}
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		resp, size, waits, sent := b.readFetch(req, targets, full)
		wait := time.Until(deadline)
		if size >= int64(req.MinBytes) || wait <= 0 || len(waits) == 0 {
			if size > 0 {
				b.metrics.bytesOut.Add(float64(size))
			}
			if sess != nil {
				resp.SessionID = sess.id
				for _, s := range sent {
					s.apply()
				}
			}
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

// readFetch reads every target once. It returns the response, the record
// bytes in it, and the channels that signal new data for the partitions
// read without error. An incremental response (!full) carries only the
// partitions with records, an error, or offsets the client has not seen.
func (b *Broker) readFetch(req *kmsg.FetchRequest, targets []*fetchTarget, full bool) (*kmsg.FetchResponse, int64, []<-chan struct{}, []sentUpdate) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	maxBytes := int64(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1 << 62
	}
	var size int64
	var waits []<-chan struct{}
	var st *kmsg.FetchResponseTopic
	var sent []sentUpdate
	committed := req.Version >= 4 && req.IsolationLevel == 1
	for _, tg := range targets {
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = tg.partition
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
		sp.PreferredReadReplica = -1
		// Empty, not null: librdkafka reads a null as a broken message
		// set, and v12+ clients expect empty too.
		sp.RecordBatches = []byte{}
		var h *partitionHandle
		if tg.topic != "" {
			h = b.replicas.get(tg.topic, tg.partition)
		}
		switch {
		case tg.topic == "" && req.Version >= 13:
			sp.ErrorCode = kerr.UnknownTopicID.Code
		case !b.partitionExists(tg.topic, tg.partition):
			sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case h != nil && req.Version >= 11 && servingErr(h) == nil && b.preferReplica(h, req.Rack, &sp):
			// KIP-392: the consumer reads from a replica in its rack.
		case servingErr(h) != nil && !(h != nil && req.Version >= 11):
			sp.ErrorCode = servingErr(h).Code
		default:
			// The leader, or (KIP-392, Fetch v11+) a follower: everything
			// a follower has applied is committed, so it serves up to its
			// own high watermark.
			v := h.sm.View()
			if servingErr(h) != nil && tg.offset > v.HighWatermark() {
				// A follower behind the offset the consumer reached on
				// the leader: nothing yet, not out of range.
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = v.HighWatermark(), lastStable(h, v), v.LogStartOffset()
				waits = append(waits, v.Changed())
				break
			}
			sp.ErrorCode = b.readPartition(h, v, tg, &sp, maxBytes-size, size == 0, committed)
			size += int64(len(sp.RecordBatches))
			if sp.ErrorCode == 0 {
				waits = append(waits, v.Changed())
			}
		}
		changed := len(sp.RecordBatches) > 0 || sp.ErrorCode != 0 ||
			sp.HighWatermark != tg.sentHW || sp.LastStableOffset != tg.sentLSO || sp.LogStartOffset != tg.sentStart
		if !full && !changed {
			continue
		}
		sent = append(sent, sentUpdate{tg, sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset})
		if st == nil || st.Topic != tg.topic || st.TopicID != tg.topicID {
			resp.Topics = append(resp.Topics, kmsg.NewFetchResponseTopic())
			st = &resp.Topics[len(resp.Topics)-1]
			st.Topic, st.TopicID = tg.topic, tg.topicID
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return resp, size, waits, sent
}

// sentUpdate records, once a response is final, what it told the client.
type sentUpdate struct {
	tg                *fetchTarget
	hw, lso, logStart int64
}

func (s sentUpdate) apply() { s.tg.sentHW, s.tg.sentLSO, s.tg.sentStart = s.hw, s.lso, s.logStart }

// lastStable is the LSO of the partition's view v. v must be taken first
// (raftactor.TxnView.LastStable).
func lastStable(h *partitionHandle, v *storage.ReadView) int64 {
	return h.sm.Txns().LastStable(v.HighWatermark())
}

func (b *Broker) readPartition(h *partitionHandle, v *storage.ReadView, tg *fetchTarget, sp *kmsg.FetchResponseTopicPartition, room int64, first, committed bool) int16 {
	if code := checkLeaderEpoch(h, tg.leaderEpoch); code != 0 {
		return code
	}
	txns := h.sm.Txns() // after the view: see lastStable
	lso := txns.LastStable(v.HighWatermark())
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = v.HighWatermark(), lso, v.LogStartOffset()
	if committed {
		// Kafka sends an empty list, not null, to a read_committed fetch.
		sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		if tg.offset >= lso && tg.offset >= v.LogStartOffset() && tg.offset <= v.HighWatermark() {
			return 0 // nothing stable to return yet
		}
	}
	limit := int64(tg.maxBytes)
	if room < limit {
		limit = room
	}
	if limit <= 0 && !first {
		return 0
	}
	if limit <= 0 {
		limit = 1 // Read still returns one whole batch
	}
	data, err := v.Read(tg.offset, int32(min(limit, 1<<31-1)))
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
	if committed && len(data) > 0 {
		var upper int64
		data, upper = cutAt(data, lso)
		for _, a := range txns.AbortedIn(tg.offset, upper) {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
			sp.AbortedTransactions = append(sp.AbortedTransactions, at)
		}
	}
	if data != nil {
		sp.RecordBatches = data
	}
	return 0
}

// cutAt keeps the whole batches of data that start below limit (the LSO:
// a transaction's first batch, or the high watermark, so no batch spans
// it) and returns them with the offset after the last one kept.
func cutAt(data []byte, limit int64) ([]byte, int64) {
	n, upper := 0, int64(0)
	for n+protocol.BatchHeaderSize <= len(data) {
		h, err := protocol.ParseBatchHeader(data[n:])
		if err != nil || h.BaseOffset >= limit {
			break
		}
		n += int(h.Length) + 12
		upper = h.BaseOffset + int64(h.LastOffsetDelta) + 1
	}
	return data[:n], upper
}

// preferReplica answers a consumer in rack, at the leader, with the
// replica it should read from instead (KIP-392): one in its rack that is
// up and in sync. It reports whether it named one; the leader serves the
// fetch itself otherwise.
func (b *Broker) preferReplica(h *partitionHandle, rack string, sp *kmsg.FetchResponseTopicPartition) bool {
	if rack == "" || !b.clustered() {
		return false
	}
	if own := b.rackOf(b.cfg.NodeID); own != nil && *own == rack {
		return false
	}
	for _, id := range h.replica.InSync() {
		node := int32(id)
		if r := b.rackOf(node); r != nil && *r == rack && node != b.cfg.NodeID && b.live(node) {
			v := h.sm.View()
			sp.PreferredReadReplica = node
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = v.HighWatermark(), lastStable(h, v), v.LogStartOffset()
			return true
		}
	}
	return false
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
