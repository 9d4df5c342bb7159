package actors

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/txns"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// txnsNode is the broker as its transaction coordinator sees it
// (txns.Node).
type txnsNode struct{ b *Broker }

func (n txnsNode) Metadata() *raftactor.Metadata { return n.b.controller.Metadata() }

func (n txnsNode) Log() *slog.Logger { return n.b.log }

func (n txnsNode) StateReplica(p int32) txns.Replica {
	if h := n.b.replicas.get(txns.StateTopic, p); h != nil {
		return h
	}
	return nil // not a nil *partitionHandle in a non-nil interface
}

func (n txnsNode) NewProducerID() (int64, error) { return n.b.producerIDs.take() }

func (n txnsNode) OffsetsPartition(group string) int32 { return n.b.groups.PartitionFor(group) }

// WriteMarkers sends one WriteTxnMarkers request to the leader of each
// group of the transaction's partitions: this node's own replicas take
// theirs directly, peers over the Kafka protocol. A partition without a
// known leader, or whose leader could not be reached, is answered with a
// retriable error, which the coordinator retries.
func (n txnsNode) WriteMarkers(m txns.Markers, done func(map[string]map[int32]*kerr.Error)) {
	b := n.b
	var mu sync.Mutex
	res := map[string]map[int32]*kerr.Error{}
	set := func(topic string, p int32, err *kerr.Error) {
		mu.Lock()
		defer mu.Unlock()
		if res[topic] == nil {
			res[topic] = map[int32]*kerr.Error{}
		}
		res[topic][p] = err
	}
	md := b.controller.Metadata()
	byNode := map[int32]map[string][]int32{}
	for topic, ps := range m.Partitions {
		t := md.Topics[topic]
		for _, p := range ps {
			if t == nil || p < 0 || int(p) >= len(t.Groups) {
				set(topic, p, kerr.UnknownTopicOrPartition)
				continue
			}
			node := b.leaderNode(t, p)
			if node < 0 {
				set(topic, p, kerr.NotLeaderForPartition)
				continue
			}
			if byNode[node] == nil {
				byNode[node] = map[string][]int32{}
			}
			byNode[node][topic] = append(byNode[node][topic], p)
		}
	}
	merge := func(parts map[string][]int32, resp *kmsg.WriteTxnMarkersResponse, err error) {
		if err == nil && resp != nil {
			for _, rm := range resp.Markers {
				for _, rt := range rm.Topics {
					for _, rp := range rt.Partitions {
						set(rt.Topic, rp.Partition, errorForCode(rp.ErrorCode))
					}
				}
			}
		}
		// Anything the answer left out was not written.
		for topic, ps := range parts {
			for _, p := range ps {
				mu.Lock()
				_, ok := res[topic][p]
				mu.Unlock()
				if !ok {
					set(topic, p, kerr.NetworkException)
				}
			}
		}
	}
	// Answers come back on several goroutines: the last one finishes.
	var pending atomic.Int32
	pending.Store(int32(len(byNode)) + 1)
	finish := func() {
		if pending.Add(-1) == 0 {
			done(res)
		}
	}
	for node, parts := range byNode {
		req := markersRequest(m, parts)
		if node == b.cfg.NodeID {
			b.writeTxnMarkers(req, func(resp *kmsg.WriteTxnMarkersResponse) {
				merge(parts, resp, nil)
				finish()
			})
			continue
		}
		go func() {
			var resp *kmsg.WriteTxnMarkersResponse
			kr, err := b.inter.request(node, req)
			if err == nil {
				resp, _ = kr.(*kmsg.WriteTxnMarkersResponse)
			} else {
				b.log.Debug("transaction markers: peer did not answer", "node", node, "err", err)
			}
			merge(parts, resp, err)
			finish()
		}()
	}
	finish()
}

// errorForCode is the kerr error of a Kafka error code, nil for 0 and
// UNKNOWN_SERVER_ERROR for a code kerr does not know.
func errorForCode(code int16) *kerr.Error {
	if code == 0 {
		return nil
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e
	}
	return kerr.UnknownServerError
}

func markersRequest(m txns.Markers, parts map[string][]int32) *kmsg.WriteTxnMarkersRequest {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	rm := kmsg.NewWriteTxnMarkersRequestMarker()
	rm.ProducerID, rm.ProducerEpoch, rm.Committed, rm.CoordinatorEpoch = m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch
	for topic, ps := range parts {
		rt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		rt.Topic, rt.Partitions = topic, ps
		rm.Topics = append(rm.Topics, rt)
	}
	req.Markers = append(req.Markers, rm)
	return req
}

// leaderNode is the node leading partition p of t: this one when its
// replica is a ready leader, else the one the leader table names; -1
// when none is known.
func (b *Broker) leaderNode(t *raftactor.Topic, p int32) int32 {
	if h := b.replicas.get(t.Name, p); h != nil && h.topic.ID == t.ID && h.replica.LeaderReady() {
		return b.cfg.NodeID
	}
	id, _ := b.peers.leaderOf(t.Groups[p])
	if id == b.cfg.NodeID || (id >= 0 && !b.live(id)) {
		return -1
	}
	return id
}
