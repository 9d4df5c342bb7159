package txns

import (
	"encoding/binary"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// txnStore is the materialized state of one __transaction_state
// partition: the last metadata record of every transactional id in it.
// Its replica writes it at apply (and from its segments at open); the
// partition's actor loads from it when it takes over.
//
// Records are Kafka's: key version 0 is TxnMetadataKey, its value a
// TxnMetadataValue, a nil value a tombstone (an expired id).
type txnStore struct {
	mu   sync.RWMutex
	txns map[string]kmsg.TxnMetadataValue
	// skipped counts records that could not be read: one must not keep
	// the partition from loading.
	skipped int
}

func newTxnStore() *txnStore { return &txnStore{txns: map[string]kmsg.TxnMetadataValue{}} }

// ObserveBatch implements raftactor.BatchObserver.
func (s *txnStore) ObserveBatch(batch []byte) {
	recs, err := protocol.Records(batch)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.skipped++
		return
	}
	for _, r := range recs {
		if !s.apply(r.Key, r.Value) {
			s.skipped++
		}
	}
}

func (s *txnStore) apply(key, value []byte) bool {
	if len(key) < 2 || binary.BigEndian.Uint16(key) != 0 {
		return len(key) >= 2 // a key version of a later Kafka: not ours
	}
	var k kmsg.TxnMetadataKey
	if k.ReadFrom(key) != nil {
		return false
	}
	if value == nil {
		delete(s.txns, k.TransactionalID)
		return true
	}
	var v kmsg.TxnMetadataValue
	// A copy: the batch's bytes belong to the partition log.
	if v.ReadFrom(append([]byte(nil), value...)) != nil {
		return false
	}
	s.txns[k.TransactionalID] = v
	return true
}

// all copies the state of every transactional id.
func (s *txnStore) all() map[string]kmsg.TxnMetadataValue {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]kmsg.TxnMetadataValue, len(s.txns))
	for id, v := range s.txns {
		out[id] = v
	}
	return out
}

// unfinished reports whether any transaction waits for its coordinator:
// open (it may time out) or between its Prepare and Complete records.
func (s *txnStore) unfinished() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.txns {
		switch v.State {
		case stateOngoing, statePrepareCommit, statePrepareAbort:
			return true
		}
	}
	return false
}

// ids lists the transactional ids, sorted.
func (s *txnStore) ids() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.txns))
	for id := range s.txns {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Reset forgets everything, before a snapshot replaces the partition's
// log and it is replayed into the store again.
func (s *txnStore) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txns = map[string]kmsg.TxnMetadataValue{}
	s.skipped = 0
}

// Transaction states as Kafka numbers them in TxnMetadataValue.
const (
	stateEmpty          = kmsg.TransactionState(0)
	stateOngoing        = kmsg.TransactionState(1)
	statePrepareCommit  = kmsg.TransactionState(2)
	statePrepareAbort   = kmsg.TransactionState(3)
	stateCompleteCommit = kmsg.TransactionState(4)
	stateCompleteAbort  = kmsg.TransactionState(5)
	stateDead           = kmsg.TransactionState(6)
)

// stateName is the name DescribeTransactions and ListTransactions use.
func stateName(s kmsg.TransactionState) string {
	names := [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}
	if int(s) >= 0 && int(s) < len(names) {
		return names[s]
	}
	return "Unknown"
}

// metadataRecord is the record of one transaction's state, in the
// flexible value version Kafka 3.5+ writes.
func metadataRecord(id string, t *txn) protocol.Record {
	k := kmsg.TxnMetadataKey{Version: 0, TransactionalID: id}
	v := kmsg.NewTxnMetadataValue()
	v.Version = 1
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis = t.pid, t.epoch, t.timeoutMs
	v.State = t.state
	v.LastUpdateTimestamp, v.StartTimestamp = t.updated, t.start
	for _, topic := range t.topics() {
		vt := kmsg.NewTxnMetadataValueTopic()
		vt.Topic = topic
		vt.Partitions = t.partitionsOf(topic)
		v.Topics = append(v.Topics, vt)
	}
	return protocol.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

// get is the last record of id.
func (s *txnStore) get(id string) (kmsg.TxnMetadataValue, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.txns[id]
	return v, ok
}
