package groups

import (
	"encoding/binary"
	"errors"
	"sort"

	"github.com/twmb/franz-go/pkg/kbin"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// The records of KIP-848 consumer groups in __consumer_offsets, as Kafka
// 4.x's group coordinator writes them (group-coordinator/src/main/
// resources/common/message/ConsumerGroup*.json). kmsg has no types for
// them, so they are encoded here by hand.
//
// A key is a 2-byte record type (the "key version" of the older records:
// 0/1 offsets, 2 classic groups, 3..8 below) and the key struct, not
// flexible (int16-length strings). A value is a 2-byte value version (0
// for all of these) and the value struct, flexible ("0+"): compact
// strings and arrays, and a tagged-field section after every struct.
//
// ConsumerGroupPartitionMetadata (type 4) was dropped by Kafka 4.1
// (KIP-1101: the group's MetadataHash replaced it). It is not written; a
// stored one is only remembered, so that it is tombstoned with the group
// (as 4.1 does on the group's next metadata change).
const (
	recConsumerGroupMetadata                 int16 = 3
	recConsumerGroupPartitionMetadata        int16 = 4
	recConsumerGroupMemberMetadata           int16 = 5
	recConsumerGroupTargetAssignmentMetadata int16 = 6
	recConsumerGroupTargetAssignmentMember   int16 = 7
	recConsumerGroupCurrentMemberAssignment  int16 = 8
)

// cgMetadataValue is ConsumerGroupMetadataValue: the group epoch.
type cgMetadataValue struct {
	Epoch int32
	// MetadataHash (tag 0, Kafka 4.1+) is a hash of the subscribed
	// topics; a new one means the topics changed since the epoch. This
	// coordinator's hash is not Kafka's: a Kafka coordinator loading it
	// would find it different and rebalance once.
	MetadataHash int64
}

// cgMemberValue is ConsumerGroupMemberMetadataValue: a member's
// subscription and identity. (ClassicMemberMetadata, tag 0, is for
// classic-protocol members of a consumer group, which this coordinator
// does not have.)
type cgMemberValue struct {
	InstanceID           *string
	RackID               *string
	ClientID             string
	ClientHost           string
	SubscribedTopicNames []string
	SubscribedTopicRegex *string
	RebalanceTimeoutMs   int32
	ServerAssignor       *string
}

// cgTopicPartitions is one topic's partitions, by topic id.
type cgTopicPartitions struct {
	TopicID    [16]byte
	Partitions []int32
}

// cgTargetMetadataValue is ConsumerGroupTargetAssignmentMetadataValue.
type cgTargetMetadataValue struct {
	AssignmentEpoch int32
}

// cgTargetMemberValue is ConsumerGroupTargetAssignmentMemberValue: one
// member's target partitions.
type cgTargetMemberValue struct {
	TopicPartitions []cgTopicPartitions
}

// cgCurrentValue is ConsumerGroupCurrentMemberAssignmentValue: what a
// member owns now. State is Kafka's MemberState byte (0 stable, 1
// unrevoked partitions, 2 unreleased partitions), as memberState is.
type cgCurrentValue struct {
	MemberEpoch                 int32
	PreviousMemberEpoch         int32
	State                       int8
	AssignedPartitions          []cgTopicPartitions
	PartitionsPendingRevocation []cgTopicPartitions
}

// consumerKey is the key of a consumer group record; member is "" for
// the group-wide ones (types 3, 4 and 6).
type consumerKey struct {
	typ    int16
	group  string
	member string
}

func hasMemberKey(typ int16) bool {
	return typ == recConsumerGroupMemberMetadata || typ == recConsumerGroupTargetAssignmentMember ||
		typ == recConsumerGroupCurrentMemberAssignment
}

func (k consumerKey) encode() []byte {
	b := kbin.AppendInt16(nil, k.typ)
	b = kbin.AppendString(b, k.group)
	if hasMemberKey(k.typ) {
		b = kbin.AppendString(b, k.member)
	}
	return b
}

var errBadRecord = errors.New("malformed consumer group record")

func decodeConsumerKey(b []byte) (consumerKey, error) {
	r := kbin.Reader{Src: b}
	k := consumerKey{typ: r.Int16()}
	if k.typ < recConsumerGroupMetadata || k.typ > recConsumerGroupCurrentMemberAssignment {
		return k, errBadRecord
	}
	k.group = r.String()
	if hasMemberKey(k.typ) {
		k.member = r.String()
	}
	if r.Complete() != nil || len(r.Src) != 0 {
		return k, errBadRecord
	}
	return k, nil
}

// consumerRecord is a record of key k and value v (nil: a tombstone).
func consumerRecord(k consumerKey, v []byte) protocol.Record {
	return protocol.Record{Key: k.encode(), Value: v}
}

// Values. Tagged fields are written only when not at their default, as
// Kafka's generated code does.

const valueVersion0 = 0

func (v *cgMetadataValue) encode() []byte {
	b := kbin.AppendInt16(nil, valueVersion0)
	b = kbin.AppendInt32(b, v.Epoch)
	if v.MetadataHash == 0 {
		return kbin.AppendUvarint(b, 0)
	}
	b = kbin.AppendUvarint(b, 1) // one tagged field
	b = kbin.AppendUvarint(b, 0) // tag 0: MetadataHash
	b = kbin.AppendUvarint(b, 8)
	return kbin.AppendInt64(b, v.MetadataHash)
}

func (v *cgMetadataValue) decode(b []byte) error {
	r, err := valueReader(b)
	if err != nil {
		return err
	}
	v.Epoch = r.Int32()
	readTags(&r, func(tag uint32, data []byte) {
		if tag == 0 && len(data) == 8 {
			v.MetadataHash = int64(binary.BigEndian.Uint64(data))
		}
	})
	return complete(&r)
}

func (v *cgMemberValue) encode() []byte {
	b := kbin.AppendInt16(nil, valueVersion0)
	b = kbin.AppendCompactNullableString(b, v.InstanceID)
	b = kbin.AppendCompactNullableString(b, v.RackID)
	b = kbin.AppendCompactString(b, v.ClientID)
	b = kbin.AppendCompactString(b, v.ClientHost)
	b = kbin.AppendCompactArrayLen(b, len(v.SubscribedTopicNames))
	for _, t := range v.SubscribedTopicNames {
		b = kbin.AppendCompactString(b, t)
	}
	b = kbin.AppendCompactNullableString(b, v.SubscribedTopicRegex)
	b = kbin.AppendInt32(b, v.RebalanceTimeoutMs)
	b = kbin.AppendCompactNullableString(b, v.ServerAssignor)
	return kbin.AppendUvarint(b, 0)
}

func (v *cgMemberValue) decode(b []byte) error {
	r, err := valueReader(b)
	if err != nil {
		return err
	}
	v.InstanceID = r.CompactNullableString()
	v.RackID = r.CompactNullableString()
	v.ClientID = r.CompactString()
	v.ClientHost = r.CompactString()
	n := r.CompactArrayLen()
	v.SubscribedTopicNames = nil
	for i := int32(0); i < n && r.Ok(); i++ {
		v.SubscribedTopicNames = append(v.SubscribedTopicNames, r.CompactString())
	}
	v.SubscribedTopicRegex = r.CompactNullableString()
	v.RebalanceTimeoutMs = r.Int32()
	v.ServerAssignor = r.CompactNullableString()
	readTags(&r, nil)
	return complete(&r)
}

func (v *cgTargetMetadataValue) encode() []byte {
	b := kbin.AppendInt16(nil, valueVersion0)
	b = kbin.AppendInt32(b, v.AssignmentEpoch)
	return kbin.AppendUvarint(b, 0)
}

func (v *cgTargetMetadataValue) decode(b []byte) error {
	r, err := valueReader(b)
	if err != nil {
		return err
	}
	v.AssignmentEpoch = r.Int32()
	readTags(&r, nil)
	return complete(&r)
}

func (v *cgTargetMemberValue) encode() []byte {
	b := kbin.AppendInt16(nil, valueVersion0)
	b = appendTopicPartitions(b, v.TopicPartitions)
	return kbin.AppendUvarint(b, 0)
}

func (v *cgTargetMemberValue) decode(b []byte) error {
	r, err := valueReader(b)
	if err != nil {
		return err
	}
	v.TopicPartitions = readTopicPartitions(&r)
	readTags(&r, nil)
	return complete(&r)
}

func (v *cgCurrentValue) encode() []byte {
	b := kbin.AppendInt16(nil, valueVersion0)
	b = kbin.AppendInt32(b, v.MemberEpoch)
	b = kbin.AppendInt32(b, v.PreviousMemberEpoch)
	b = kbin.AppendInt8(b, v.State)
	b = appendTopicPartitions(b, v.AssignedPartitions)
	b = appendTopicPartitions(b, v.PartitionsPendingRevocation)
	return kbin.AppendUvarint(b, 0)
}

func (v *cgCurrentValue) decode(b []byte) error {
	r, err := valueReader(b)
	if err != nil {
		return err
	}
	v.MemberEpoch = r.Int32()
	v.PreviousMemberEpoch = r.Int32()
	v.State = r.Int8()
	v.AssignedPartitions = readTopicPartitions(&r)
	v.PartitionsPendingRevocation = readTopicPartitions(&r)
	readTags(&r, nil)
	return complete(&r)
}

// appendTopicPartitions writes the TopicPartitions struct array (each
// element with its own, empty, tagged fields; AssignmentEpochs, tag 0 of
// Kafka 4.2+, is not written).
func appendTopicPartitions(b []byte, tps []cgTopicPartitions) []byte {
	b = kbin.AppendCompactArrayLen(b, len(tps))
	for _, tp := range tps {
		b = kbin.AppendUuid(b, tp.TopicID)
		b = kbin.AppendCompactArrayLen(b, len(tp.Partitions))
		for _, p := range tp.Partitions {
			b = kbin.AppendInt32(b, p)
		}
		b = kbin.AppendUvarint(b, 0)
	}
	return b
}

func readTopicPartitions(r *kbin.Reader) []cgTopicPartitions {
	n := r.CompactArrayLen()
	var out []cgTopicPartitions
	for i := int32(0); i < n && r.Ok(); i++ {
		tp := cgTopicPartitions{TopicID: r.Uuid()}
		np := r.CompactArrayLen()
		tp.Partitions = make([]int32, 0, max(np, 0))
		for j := int32(0); j < np && r.Ok(); j++ {
			tp.Partitions = append(tp.Partitions, r.Int32())
		}
		readTags(r, nil)
		out = append(out, tp)
	}
	return out
}

// valueReader checks the value version and returns a reader after it.
func valueReader(b []byte) (kbin.Reader, error) {
	r := kbin.Reader{Src: b}
	if v := r.Int16(); !r.Ok() || v != valueVersion0 {
		return r, errBadRecord
	}
	return r, nil
}

// readTags reads a tagged-field section, handing each field to f (nil:
// all skipped, as unknown tags are).
func readTags(r *kbin.Reader, f func(tag uint32, data []byte)) {
	n := r.Uvarint()
	for i := uint32(0); i < n && r.Ok(); i++ {
		tag := r.Uvarint()
		data := r.Span(int(r.Uvarint()))
		if f != nil && r.Ok() {
			f(tag, data)
		}
	}
}

// complete requires the value to have been read whole: Kafka writes
// nothing after the last tagged-field section.
func complete(r *kbin.Reader) error {
	if r.Complete() != nil || len(r.Src) != 0 {
		return errBadRecord
	}
	return nil
}

// partSet ↔ TopicPartitions, topics by id and partitions ascending, so a
// set always encodes to the same bytes.
func topicPartitionsOf(s partSet) []cgTopicPartitions {
	tas := groupByTopic(s)
	out := make([]cgTopicPartitions, 0, len(tas))
	for _, ta := range tas {
		out = append(out, cgTopicPartitions{TopicID: ta.id, Partitions: ta.partitions})
	}
	return out
}

func partSetOf(tps []cgTopicPartitions) partSet {
	s := partSet{}
	for _, tp := range tps {
		for _, p := range tp.Partitions {
			s[topicPart{tp.TopicID, p}] = struct{}{}
		}
	}
	return s
}

// The materialized consumer group records of a group in the groupStore.

// storedConsumerGroup is what the log says of a consumer group. The
// values are never modified once stored (a record replaces them), so a
// copy of the struct and its members map is a consistent snapshot.
type storedConsumerGroup struct {
	meta *cgMetadataValue // nil: none, or tombstoned
	// partitionMetadata: a Kafka 4.0 ConsumerGroupPartitionMetadata
	// record is held (contents not kept).
	partitionMetadata bool
	target            *cgTargetMetadataValue
	members           map[string]*storedConsumerMember
}

type storedConsumerMember struct {
	meta    *cgMemberValue
	target  *cgTargetMemberValue
	current *cgCurrentValue
}

func (sg *storedConsumerGroup) empty() bool {
	return sg.meta == nil && !sg.partitionMetadata && sg.target == nil && len(sg.members) == 0
}

// applyConsumer folds one consumer group record (key types 3..8) into
// the state; false if it could not be read. Called with s.mu held.
func (s *groupStore) applyConsumer(key, value []byte) bool {
	k, err := decodeConsumerKey(key)
	if err != nil {
		return false
	}
	if value == nil {
		g := s.groups[k.group]
		if g == nil || g.consumer == nil {
			return true
		}
		cg := g.consumer
		switch k.typ {
		case recConsumerGroupMetadata:
			cg.meta = nil
		case recConsumerGroupPartitionMetadata:
			cg.partitionMetadata = false
		case recConsumerGroupTargetAssignmentMetadata:
			cg.target = nil
		default:
			s.updateConsumerMember(cg, k.member, func(m *storedConsumerMember) {
				switch k.typ {
				case recConsumerGroupMemberMetadata:
					m.meta = nil
				case recConsumerGroupTargetAssignmentMember:
					m.target = nil
				default:
					m.current = nil
				}
			})
		}
		if cg.empty() {
			g.consumer = nil
			s.dropIfEmpty(k.group)
		}
		return true
	}
	// Decoded values copy what they keep: the batch's bytes belong to the
	// partition log.
	switch k.typ {
	case recConsumerGroupMetadata:
		v := new(cgMetadataValue)
		if v.decode(value) != nil {
			return false
		}
		s.consumerGroupOf(k.group).meta = v
	case recConsumerGroupPartitionMetadata:
		if len(value) < 2 || binary.BigEndian.Uint16(value) != valueVersion0 {
			return false
		}
		s.consumerGroupOf(k.group).partitionMetadata = true
	case recConsumerGroupTargetAssignmentMetadata:
		v := new(cgTargetMetadataValue)
		if v.decode(value) != nil {
			return false
		}
		s.consumerGroupOf(k.group).target = v
	case recConsumerGroupMemberMetadata:
		v := new(cgMemberValue)
		if v.decode(value) != nil {
			return false
		}
		s.updateConsumerMember(s.consumerGroupOf(k.group), k.member, func(m *storedConsumerMember) { m.meta = v })
	case recConsumerGroupTargetAssignmentMember:
		v := new(cgTargetMemberValue)
		if v.decode(value) != nil {
			return false
		}
		s.updateConsumerMember(s.consumerGroupOf(k.group), k.member, func(m *storedConsumerMember) { m.target = v })
	case recConsumerGroupCurrentMemberAssignment:
		v := new(cgCurrentValue)
		if v.decode(value) != nil {
			return false
		}
		s.updateConsumerMember(s.consumerGroupOf(k.group), k.member, func(m *storedConsumerMember) { m.current = v })
	}
	return true
}

func (s *groupStore) consumerGroupOf(name string) *storedConsumerGroup {
	g := s.group(name)
	if g.consumer == nil {
		g.consumer = &storedConsumerGroup{members: map[string]*storedConsumerMember{}}
	}
	return g.consumer
}

// updateConsumerMember replaces a member's entry by a changed copy (the
// old one may be in a snapshot), dropping it once it holds nothing.
func (s *groupStore) updateConsumerMember(cg *storedConsumerGroup, id string, change func(*storedConsumerMember)) {
	m := &storedConsumerMember{}
	if old := cg.members[id]; old != nil {
		*m = *old
	}
	change(m)
	if m.meta == nil && m.target == nil && m.current == nil {
		delete(cg.members, id)
		return
	}
	cg.members[id] = m
}

// consumerGroup is a snapshot of the consumer group records of group, or
// nil if the log holds none. Its values must not be modified.
func (s *groupStore) consumerGroup(group string) *storedConsumerGroup {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[group]
	if g == nil || g.consumer == nil {
		return nil
	}
	cp := *g.consumer
	cp.members = make(map[string]*storedConsumerMember, len(g.consumer.members))
	for id, m := range g.consumer.members {
		cp.members[id] = m
	}
	return &cp
}

// sortedMemberIDs lists the stored members' ids in order.
func (sg *storedConsumerGroup) sortedMemberIDs() []string {
	ids := make([]string, 0, len(sg.members))
	for id := range sg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
