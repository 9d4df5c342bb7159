package groups

import (
	"encoding/binary"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// groupStore is the materialized state of one __consumer_offsets
// partition: committed offsets and the last group metadata of each group
// whose records it holds. Its replica writes it at apply; group actors and
// handlers read it.
//
// Records are Kafka's own: key version 0/1 an offset commit, key version 2
// a classic group's metadata, 3..8 a KIP-848 consumer group's
// (store_consumer.go), a nil value a tombstone. Other key versions
// (share and streams groups) are skipped.
type groupStore struct {
	mu     sync.RWMutex
	groups map[string]*storedGroup
	// txns are the groups holding pending offsets of each producer id
	// (store_txn.go): the groups its next marker commits or aborts.
	txns map[int64]map[string]struct{}
	// skipped counts records that could not be decoded, for tests and logs:
	// a record we cannot read must not stop the partition from loading.
	skipped int
}

// storedGroup is what the log says about one group.
type storedGroup struct {
	meta     *kmsg.GroupMetadataValue // nil: none, or tombstoned
	consumer *storedConsumerGroup     // nil: no consumer group records
	offsets  map[string]map[int32]storedOffset
	// pending are TxnOffsetCommit offsets by producer id, until the
	// producer's marker commits them into offsets or aborts them.
	pending map[int64]map[string]map[int32]storedOffset
}

// storedOffset is an offset with the log offset of its record: a
// transaction's offset, applied at its commit marker, replaces the
// committed one only if its record is the later of the two (as Kafka's
// OffsetMetadataManager does), which is also the record compaction keeps,
// so a compacted log loads the same offsets.
type storedOffset struct {
	Offset
	at int64
}

// Offset is one committed offset as OffsetCommitValue holds it.
type Offset struct {
	Offset          int64
	LeaderEpoch     int32
	Metadata        string
	CommitTimestamp int64
}

func newGroupStore() *groupStore {
	return &groupStore{groups: map[string]*storedGroup{}, txns: map[int64]map[string]struct{}{}}
}

// ObserveBatch implements raftactor.BatchObserver. A transaction marker
// ends its producer's pending offsets; the offsets of a transactional
// batch wait for it.
func (s *groupStore) ObserveBatch(batch []byte) {
	h, err := protocol.ParseBatchHeader(batch)
	if err == nil && h.Control() {
		commit, _, err := protocol.ControlMarker(batch)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.skipped++
			return
		}
		s.endTxn(h.ProducerID, commit)
		return
	}
	recs, err := protocol.Records(batch)
	if err != nil {
		s.mu.Lock()
		s.skipped++
		s.mu.Unlock()
		return
	}
	pid := int64(-1)
	if h.Transactional() {
		pid = h.ProducerID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		if !s.apply(r.Key, r.Value, r.Offset, pid) {
			s.skipped++
		}
	}
}

// apply folds one record, at log offset at, into the state; false if it
// could not be read. pid is the producer whose transaction the record is
// part of, -1 for none.
func (s *groupStore) apply(key, value []byte, at, pid int64) bool {
	if len(key) < 2 {
		return false
	}
	switch v := int16(binary.BigEndian.Uint16(key)); v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if k.ReadFrom(key) != nil {
			return false
		}
		if value == nil {
			if g := s.groups[k.Group]; g != nil {
				deleteOffset(g.offsets, k.Topic, k.Partition)
				s.dropPending(k.Group, g, k.Topic, k.Partition)
				s.dropIfEmpty(k.Group)
			}
			return true
		}
		var val kmsg.OffsetCommitValue
		if val.ReadFrom(value) != nil {
			return false
		}
		if val.Version < 3 {
			val.LeaderEpoch = -1
		}
		o := storedOffset{Offset{Offset: val.Offset, LeaderEpoch: val.LeaderEpoch, Metadata: val.Metadata, CommitTimestamp: val.CommitTimestamp}, at}
		g := s.group(k.Group)
		if pid >= 0 {
			s.addPending(k.Group, g, pid, k.Topic, k.Partition, o)
			return true
		}
		putOffset(g.offsets, k.Topic, k.Partition, o)
		return true
	case 2:
		var k kmsg.GroupMetadataKey
		if k.ReadFrom(key) != nil {
			return false
		}
		if value == nil {
			if g := s.groups[k.Group]; g != nil {
				g.meta = nil
				s.dropIfEmpty(k.Group)
			}
			return true
		}
		val := new(kmsg.GroupMetadataValue)
		// Subscriptions and assignments alias what they are read from: a
		// copy, as the batch's bytes belong to the partition log.
		if val.ReadFrom(append([]byte(nil), value...)) != nil {
			return false
		}
		s.group(k.Group).meta = val
		return true
	case recConsumerGroupMetadata, recConsumerGroupPartitionMetadata, recConsumerGroupMemberMetadata,
		recConsumerGroupTargetAssignmentMetadata, recConsumerGroupTargetAssignmentMember, recConsumerGroupCurrentMemberAssignment:
		return s.applyConsumer(key, value)
	default:
		return true // not ours: share and streams group records
	}
}

func (s *groupStore) group(name string) *storedGroup {
	g := s.groups[name]
	if g == nil {
		g = &storedGroup{offsets: map[string]map[int32]storedOffset{}}
		s.groups[name] = g
	}
	return g
}

func (s *groupStore) dropIfEmpty(name string) {
	if g := s.groups[name]; g != nil && g.meta == nil && g.consumer == nil && len(g.offsets) == 0 && len(g.pending) == 0 {
		delete(s.groups, name)
	}
}

// metadata is the group's last metadata record, or nil. The value is
// never modified once stored: callers may keep it but not change it.
func (s *groupStore) metadata(group string) *kmsg.GroupMetadataValue {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if g := s.groups[group]; g != nil {
		return g.meta
	}
	return nil
}

// has reports whether the log holds anything of group.
func (s *groupStore) has(group string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.groups[group] != nil
}

// offset is one committed offset of group.
func (s *groupStore) offset(group, topic string, partition int32) (Offset, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if g := s.groups[group]; g != nil {
		o, ok := g.offsets[topic][partition]
		return o.Offset, ok
	}
	return Offset{}, false
}

// offsets copies every committed offset of group.
func (s *groupStore) offsets(group string) map[string]map[int32]Offset {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]map[int32]Offset{}
	if g := s.groups[group]; g != nil {
		for t, ps := range g.offsets {
			cp := make(map[int32]Offset, len(ps))
			for p, o := range ps {
				cp[p] = o.Offset
			}
			out[t] = cp
		}
	}
	return out
}

// names lists the groups the log holds anything of, sorted.
func (s *groupStore) names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.groups))
	for n := range s.groups {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Reset forgets everything, before the partition's log is replaced by a
// snapshot's and replayed into the store again.
func (s *groupStore) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups = map[string]*storedGroup{}
	s.txns = map[int64]map[string]struct{}{}
	s.skipped = 0
}
