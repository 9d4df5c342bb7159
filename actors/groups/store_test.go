package groups

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

func observe(s *groupStore, recs ...protocol.Record) {
	s.ObserveBatch(protocol.BuildBatch(recs, time.Now().UnixMilli()))
}

func TestGroupStoreOffsetsAndTombstones(t *testing.T) {
	s := newGroupStore()
	observe(s,
		offsetCommitRecord("g", "t", 0, Offset{Offset: 10, LeaderEpoch: 3, Metadata: "m", CommitTimestamp: 5}),
		offsetCommitRecord("g", "t", 1, Offset{Offset: 20, LeaderEpoch: -1, CommitTimestamp: 6}),
		offsetCommitRecord("h", "u", 0, Offset{Offset: 1}),
	)
	if o, ok := s.offset("g", "t", 0); !ok || o != (Offset{10, 3, "m", 5}) {
		t.Fatalf("g t-0 = %+v %v", o, ok)
	}
	// A later commit overwrites; a tombstone deletes.
	observe(s, offsetCommitRecord("g", "t", 0, Offset{Offset: 11, CommitTimestamp: 7}), offsetTombstone("g", "t", 1))
	if o, _ := s.offset("g", "t", 0); o.Offset != 11 {
		t.Fatalf("overwrite: %+v", o)
	}
	if _, ok := s.offset("g", "t", 1); ok {
		t.Fatal("tombstoned offset still there")
	}
	if got := s.names(); len(got) != 2 || got[0] != "g" || got[1] != "h" {
		t.Fatalf("names = %v", got)
	}
	observe(s, offsetTombstone("h", "u", 0))
	if s.has("h") {
		t.Fatal("group with nothing left is still listed")
	}
	// Kafka's older offset value (v1, with an expire timestamp) still reads.
	k := kmsg.OffsetCommitKey{Version: 0, Group: "old", Topic: "t", Partition: 2}
	v := kmsg.OffsetCommitValue{Version: 1, Offset: 42, Metadata: "x", CommitTimestamp: 9, ExpireTimestamp: 99}
	observe(s, protocol.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)})
	if o, ok := s.offset("old", "t", 2); !ok || o != (Offset{42, -1, "x", 9}) {
		t.Fatalf("v1 value = %+v %v", o, ok)
	}
}

func TestGroupStoreMetadataRoundTrip(t *testing.T) {
	s := newGroupStore()
	v := kmsg.NewGroupMetadataValue()
	proto, leader, inst := "range", "m-1", "i-1"
	v.ProtocolType, v.Generation, v.Protocol, v.Leader, v.CurrentStateTimestamp = "consumer", 7, &proto, &leader, 1234
	m := kmsg.NewGroupMetadataValueMember()
	m.MemberID, m.InstanceID, m.ClientID, m.ClientHost = "m-1", &inst, "c", "/127.0.0.1"
	m.RebalanceTimeoutMillis, m.SessionTimeoutMillis = 60000, 45000
	m.Subscription, m.Assignment = []byte{1, 2}, []byte{3}
	v.Members = []kmsg.GroupMetadataValueMember{m}
	batch := protocol.BuildBatch([]protocol.Record{groupMetadataRecord("g", &v)}, 1)
	s.ObserveBatch(batch)
	// The store must not alias the batch: the log owns its bytes.
	for i := range batch {
		batch[i] = 0
	}
	got := s.metadata("g")
	if got == nil || got.Generation != 7 || *got.Protocol != "range" || *got.Leader != "m-1" || got.CurrentStateTimestamp != 1234 {
		t.Fatalf("metadata = %+v", got)
	}
	gm := got.Members[0]
	if gm.MemberID != "m-1" || *gm.InstanceID != "i-1" || gm.SessionTimeoutMillis != 45000 ||
		!bytes.Equal(gm.Subscription, []byte{1, 2}) || !bytes.Equal(gm.Assignment, []byte{3}) {
		t.Fatalf("member = %+v", gm)
	}
	observe(s, groupTombstone("g"))
	if s.metadata("g") != nil || s.has("g") {
		t.Fatal("group metadata tombstone not applied")
	}
}

func TestGroupStoreSkipsWhatItCannotRead(t *testing.T) {
	s := newGroupStore()
	observe(s,
		protocol.Record{Key: []byte{0}, Value: []byte{1}},          // short key
		protocol.Record{Key: []byte{0, 1, 0}, Value: []byte{0, 3}}, // truncated
		protocol.Record{Key: []byte{0, 9, 0, 0}, Value: []byte{1}}, // a newer record kind: ignored
		offsetCommitRecord("g", "t", 0, Offset{Offset: 1}),
	)
	if _, ok := s.offset("g", "t", 0); !ok {
		t.Fatal("a good record after bad ones was lost")
	}
	if s.skipped != 2 {
		t.Fatalf("skipped = %d, want 2", s.skipped)
	}
}
