package txns

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// txn is one transactional id's state as its coordinator holds it: what
// the last record written for it says, plus whether a change is in
// flight (busy), during which other requests for it get
// CONCURRENT_TRANSACTIONS, as Kafka's pendingState does.
type txn struct {
	id        string
	pid       int64
	epoch     int16
	timeoutMs int32
	state     kmsg.TransactionState
	parts     map[string]map[int32]bool
	start     int64 // ms when the open transaction began, -1 when none
	updated   int64 // ms of the last change
	busy      bool
	// lastEpoch is the epoch a KIP-360 InitProducerId bumped from (-1:
	// none), so that its retry gets the epoch it was given rather than
	// being fenced (Kafka's lastProducerEpoch; in memory only, as there).
	lastEpoch int16
	// fresh: an id whose first record is still being written; a failure
	// forgets it again.
	fresh bool
}

func txnFromRecord(id string, v kmsg.TxnMetadataValue) *txn {
	t := &txn{id: id, pid: v.ProducerID, epoch: v.ProducerEpoch, timeoutMs: v.TimeoutMillis,
		state: v.State, start: v.StartTimestamp, updated: v.LastUpdateTimestamp, lastEpoch: -1}
	for _, vt := range v.Topics {
		for _, p := range vt.Partitions {
			t.add(vt.Topic, p)
		}
	}
	return t
}

// next is a copy to change into the state to write; the record is
// written first, and t takes the copy once it is applied.
func (t *txn) next() txn {
	n := *t
	n.busy, n.fresh = false, false
	n.parts = make(map[string]map[int32]bool, len(t.parts))
	for topic, ps := range t.parts {
		for p := range ps {
			n.add(topic, p)
		}
	}
	return n
}

func (t *txn) add(topic string, p int32) {
	if t.parts == nil {
		t.parts = map[string]map[int32]bool{}
	}
	ps := t.parts[topic]
	if ps == nil {
		ps = map[int32]bool{}
		t.parts[topic] = ps
	}
	ps[p] = true
}

func (t *txn) has(topic string, p int32) bool { return t.parts[topic][p] }

func (t *txn) topics() []string {
	out := make([]string, 0, len(t.parts))
	for topic := range t.parts {
		out = append(out, topic)
	}
	sort.Strings(out)
	return out
}

func (t *txn) partitionsOf(topic string) []int32 {
	out := make([]int32, 0, len(t.parts[topic]))
	for p := range t.parts[topic] {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// partitionList is the partitions of the transaction, by topic.
func (t *txn) partitionList() map[string][]int32 {
	out := make(map[string][]int32, len(t.parts))
	for topic := range t.parts {
		out[topic] = t.partitionsOf(topic)
	}
	return out
}
