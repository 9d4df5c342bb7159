package groups

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The bytes are worked out by hand from Kafka's schemas: keys not
// flexible (int16 type, int16-length strings), values flexible (int16
// version 0, compact strings and arrays as uvarint length+1, a tagged
// field section after every struct).
func TestConsumerRecordGoldenBytes(t *testing.T) {
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	idHex := "0102030405060708090a0b0c0d0e0f10"
	r, u := "r", "uniform"
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"group key", consumerKey{typ: 3, group: "g"}.encode(), "0003" + "000167"},
		{"member key", consumerKey{typ: 5, group: "g", member: "m"}.encode(), "0005" + "000167" + "00016d"},
		{"target member key", consumerKey{typ: 7, group: "g", member: "m"}.encode(), "0007" + "000167" + "00016d"},
		{"current key", consumerKey{typ: 8, group: "g", member: "m"}.encode(), "0008" + "000167" + "00016d"},
		{"target metadata key", consumerKey{typ: 6, group: "g"}.encode(), "0006" + "000167"},
		{"metadata", (&cgMetadataValue{Epoch: 5}).encode(), "0000" + "00000005" + "00"},
		{"metadata with hash", (&cgMetadataValue{Epoch: 5, MetadataHash: 258}).encode(),
			"0000" + "00000005" + "01" + "00" + "08" + "0000000000000102"},
		{"target metadata", (&cgTargetMetadataValue{AssignmentEpoch: 7}).encode(), "0000" + "00000007" + "00"},
		{"member", (&cgMemberValue{RackID: &r, ClientID: "c", ClientHost: "h", SubscribedTopicNames: []string{"t"},
			RebalanceTimeoutMs: 1000, ServerAssignor: &u}).encode(),
			"0000" + "00" + "0272" + "0263" + "0268" + "02" + "0274" + "00" + "000003e8" + "08" + hex.EncodeToString([]byte(u)) + "00"},
		{"target member", (&cgTargetMemberValue{TopicPartitions: []cgTopicPartitions{{id, []int32{0, 2}}}}).encode(),
			"0000" + "02" + idHex + "03" + "00000000" + "00000002" + "00" + "00"},
		{"current", (&cgCurrentValue{MemberEpoch: 3, PreviousMemberEpoch: 2, State: 1,
			AssignedPartitions: []cgTopicPartitions{{id, []int32{1}}}}).encode(),
			"0000" + "00000003" + "00000002" + "01" + "02" + idHex + "02" + "00000001" + "00" + "01" + "00"},
	}
	for _, c := range cases {
		if want := mustHex(t, c.want); !bytes.Equal(c.got, want) {
			t.Errorf("%s:\n got %x\nwant %x", c.name, c.got, want)
		}
	}
}

func TestConsumerRecordRoundTrip(t *testing.T) {
	inst, rack, re, asg := "i-1", "rack-a", "t.*", "range"
	ids := [][16]byte{{9}, {1, 2}}
	tps := []cgTopicPartitions{{ids[0], []int32{0, 3, 5}}, {ids[1], []int32{}}}

	md := cgMetadataValue{Epoch: 42, MetadataHash: -7}
	var md2 cgMetadataValue
	if err := md2.decode(md.encode()); err != nil || md2 != md {
		t.Fatalf("metadata: %+v %v", md2, err)
	}
	for _, mv := range []cgMemberValue{
		{InstanceID: &inst, RackID: &rack, ClientID: "cl", ClientHost: "/10.0.0.1", SubscribedTopicNames: []string{"a", "b"},
			SubscribedTopicRegex: &re, RebalanceTimeoutMs: 30000, ServerAssignor: &asg},
		{ClientID: "", ClientHost: "", RebalanceTimeoutMs: -1},
	} {
		var got cgMemberValue
		if err := got.decode(mv.encode()); err != nil || !reflect.DeepEqual(got, mv) {
			t.Fatalf("member:\n got %+v %v\nwant %+v", got, err, mv)
		}
	}
	tm := cgTargetMetadataValue{AssignmentEpoch: 9}
	var tm2 cgTargetMetadataValue
	if err := tm2.decode(tm.encode()); err != nil || tm2 != tm {
		t.Fatalf("target metadata: %+v %v", tm2, err)
	}
	tv := cgTargetMemberValue{TopicPartitions: tps}
	var tv2 cgTargetMemberValue
	if err := tv2.decode(tv.encode()); err != nil || !reflect.DeepEqual(tv2, tv) {
		t.Fatalf("target member: %+v %v", tv2, err)
	}
	cv := cgCurrentValue{MemberEpoch: 4, PreviousMemberEpoch: 3, State: 2, AssignedPartitions: tps,
		PartitionsPendingRevocation: []cgTopicPartitions{{ids[1], []int32{7}}}}
	var cv2 cgCurrentValue
	if err := cv2.decode(cv.encode()); err != nil || !reflect.DeepEqual(cv2, cv) {
		t.Fatalf("current:\n got %+v %v\nwant %+v", cv2, err, cv)
	}
	for _, typ := range []int16{3, 4, 5, 6, 7, 8} {
		k := consumerKey{typ: typ, group: "grp"}
		if hasMemberKey(typ) {
			k.member = "mem"
		}
		if got, err := decodeConsumerKey(k.encode()); err != nil || got != k {
			t.Fatalf("key %d: %+v %v", typ, got, err)
		}
	}
	// partSet ↔ TopicPartitions.
	s := partSet{{ids[0], 2}: {}, {ids[0], 0}: {}, {ids[1], 1}: {}}
	if got := partSetOf(topicPartitionsOf(s)); !samePartSet(got, s) {
		t.Fatalf("partSet round trip: %v", got)
	}
}

// Later Kafka versions add tagged fields (CreationTimeMs, AssignmentEpochs,
// AssignmentTimestamp, ClassicMemberMetadata); they are read past.
func TestConsumerRecordUnknownTagsAndErrors(t *testing.T) {
	tag := func(b []byte, tags ...[]byte) []byte {
		// Replace the value's last (empty) tag section.
		b = append(b[:len(b)-1], byte(len(tags)))
		for i, tg := range tags {
			b = append(b, byte(i+1), byte(len(tg)))
			b = append(b, tg...)
		}
		return b
	}
	var tm cgTargetMetadataValue
	if err := tm.decode(tag((&cgTargetMetadataValue{AssignmentEpoch: 3}).encode(), []byte{0, 0, 0, 0, 0, 0, 0, 9})); err != nil || tm.AssignmentEpoch != 3 {
		t.Fatalf("tagged target metadata: %+v %v", tm, err)
	}
	// CreationTimeMs (tag 1) beside MetadataHash (tag 0).
	raw := mustHex(t, "0000"+"00000002"+"02"+"00"+"08"+"0000000000000005"+"01"+"08"+"0000000000000006")
	var md cgMetadataValue
	if err := md.decode(raw); err != nil || md != (cgMetadataValue{Epoch: 2, MetadataHash: 5}) {
		t.Fatalf("metadata with two tags: %+v %v", md, err)
	}
	// AssignmentEpochs (tag 0) in a TopicPartitions element.
	id := [16]byte{7}
	raw = mustHex(t, "0000"+"00000003"+"00000002"+"00"+
		"02"+hex.EncodeToString(id[:])+"02"+"00000004"+"01"+"00"+"06"+"02"+"00000003"+"00"+
		"01"+"00")
	var cv cgCurrentValue
	if err := cv.decode(raw); err != nil || cv.MemberEpoch != 3 || len(cv.AssignedPartitions) != 1 || cv.AssignedPartitions[0].Partitions[0] != 4 {
		t.Fatalf("current with AssignmentEpochs: %+v %v", cv, err)
	}
	good := (&cgCurrentValue{MemberEpoch: 1}).encode()
	for name, b := range map[string][]byte{
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte(nil), good...), 0),
		"value version": append([]byte{0, 1}, good[2:]...),
		"empty":         {},
	} {
		if err := new(cgCurrentValue).decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := decodeConsumerKey(mustHex(t, "0009000167")); err == nil {
		t.Error("key type 9 decoded")
	}
	if _, err := decodeConsumerKey(mustHex(t, "0005000167")); err == nil {
		t.Error("member key without member decoded")
	}
}

func TestGroupStoreConsumerRecords(t *testing.T) {
	s := newGroupStore()
	id := [16]byte{1}
	key := func(typ int16, member string) consumerKey { return consumerKey{typ: typ, group: "g", member: member} }
	rec := func(typ int16, member string, v interface{ encode() []byte }) protocol.Record {
		return consumerRecord(key(typ, member), v.encode())
	}
	tomb := func(typ int16, member string) protocol.Record { return consumerRecord(key(typ, member), nil) }
	observe(s,
		rec(5, "a", &cgMemberValue{ClientID: "ca", SubscribedTopicNames: []string{"t"}, RebalanceTimeoutMs: 100}),
		rec(5, "b", &cgMemberValue{ClientID: "cb"}),
		rec(3, "", &cgMetadataValue{Epoch: 2}),
		rec(7, "a", &cgTargetMemberValue{TopicPartitions: []cgTopicPartitions{{id, []int32{0}}}}),
		rec(7, "b", &cgTargetMemberValue{TopicPartitions: []cgTopicPartitions{{id, []int32{1}}}}),
		rec(6, "", &cgTargetMetadataValue{AssignmentEpoch: 2}),
		rec(8, "a", &cgCurrentValue{MemberEpoch: 2, PreviousMemberEpoch: 1, AssignedPartitions: []cgTopicPartitions{{id, []int32{0}}}}),
		rec(8, "b", &cgCurrentValue{MemberEpoch: 2, PreviousMemberEpoch: 0}),
		protocol.Record{Key: key(4, "").encode(), Value: mustHex(t, "0000"+"00000002"+"01"+"00")},
	)
	if s.skipped != 0 {
		t.Fatalf("skipped %d", s.skipped)
	}
	cg := s.consumerGroup("g")
	if cg == nil || cg.meta.Epoch != 2 || cg.target.AssignmentEpoch != 2 || !cg.partitionMetadata || len(cg.members) != 2 {
		t.Fatalf("stored: %+v", cg)
	}
	a := cg.members["a"]
	if a.meta.ClientID != "ca" || a.target.TopicPartitions[0].Partitions[0] != 0 || a.current.MemberEpoch != 2 || a.current.PreviousMemberEpoch != 1 {
		t.Fatalf("member a: %+v %+v %+v", a.meta, a.target, a.current)
	}
	// Member b leaves: its three tombstones drop it; the snapshot taken
	// before does not change.
	observe(s, tomb(8, "b"), tomb(7, "b"), tomb(5, "b"), rec(3, "", &cgMetadataValue{Epoch: 3}))
	if cg.members["b"] == nil || cg.meta.Epoch != 2 {
		t.Fatal("snapshot changed")
	}
	if cg2 := s.consumerGroup("g"); len(cg2.members) != 1 || cg2.meta.Epoch != 3 {
		t.Fatalf("after b left: %+v", cg2)
	}
	// Garbage is counted, not fatal.
	observe(s, protocol.Record{Key: key(5, "x").encode(), Value: []byte{0, 0, 1}})
	if s.skipped != 1 {
		t.Fatalf("skipped %d", s.skipped)
	}
	// The group's tombstones delete it.
	observe(s, tomb(8, "a"), tomb(7, "a"), tomb(5, "a"), tomb(6, ""), tomb(4, ""), tomb(3, ""))
	if s.has("g") || s.consumerGroup("g") != nil {
		t.Fatalf("group still stored: %+v", s.consumerGroup("g"))
	}
	// Tombstones of a group never seen are harmless.
	observe(s, tomb(3, ""), consumerRecord(consumerKey{typ: 8, group: "none", member: "m"}, nil))
	if len(s.names()) != 0 || s.skipped != 1 {
		t.Fatalf("names %v skipped %d", s.names(), s.skipped)
	}
}

func TestConsumerDiff(t *testing.T) {
	img := func(epoch byte, members ...string) *consumerSaved {
		s := &consumerSaved{meta: []byte{0, 0, epoch}, target: []byte{0, 1, epoch}, members: map[string]*savedMember{}}
		for _, m := range members {
			s.members[m] = &savedMember{meta: []byte(m), target: []byte{epoch}, current: []byte{epoch}}
		}
		return s
	}
	types := func(recs []protocol.Record) string {
		var out string
		for _, r := range recs {
			k, err := decodeConsumerKey(r.Key)
			if err != nil {
				t.Fatal(err)
			}
			if r.Value == nil {
				out += "-"
			}
			out += fmt.Sprintf("%d%s ", k.typ, k.member)
		}
		return out
	}
	empty := &consumerSaved{}
	for _, c := range []struct {
		name     string
		old, cur *consumerSaved
		want     string
	}{
		{"create", empty, img(1, "a"), "5a 3 7a 6 8a "},
		{"unchanged", img(1, "a"), img(1, "a"), ""},
		{"join", img(1, "a"), img(2, "a", "b"), "5b 3 7a 7b 6 8a 8b "},
		{"leave", img(2, "a", "b"), img(3, "a"), "-8b -7b -5b 3 7a 6 8a "},
		{"delete", img(3, "a"), empty, "-8a -7a -5a -6 -3 "},
		{"drop 4.0 partition metadata", &consumerSaved{meta: []byte{1}, partitionMetadata: true}, &consumerSaved{meta: []byte{1}}, "-4 "},
	} {
		if got := types(consumerDiff("g", c.old, c.cur)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// A consumer group driven to Stable comes back whole after a restart of
// the broker on the same data: group and assignment epochs, members,
// their epochs, targets and assignments; its members carry on with the
// epochs they had, their sessions run again, and leaving and deleting
// write the tombstones.
func TestConsumerGroupSurvivesRestart(t *testing.T) {
	disk := newOffsetsDisk()
	h := newGroupHarness(t, disk)
	topic := h.createTopic("t", 4)
	store := func() *groupStore { return h.store("g") }
	clients := []*consumerClient{{id: "a"}, {id: "b"}}
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatalf("not Stable: %+v", h.consumerDescribe())
		}
		for _, c := range clients {
			h.beat(c, topic)
			// Answered once written: the store already holds the epoch
			// the answer carries.
			st := store().consumerGroup("g")
			if st == nil || st.members[c.id] == nil || st.members[c.id].current.MemberEpoch != c.epoch {
				t.Fatalf("store behind the answer to %s (epoch %d): %+v", c.id, c.epoch, st)
			}
		}
		if d := h.consumerDescribe(); d.State == "Stable" {
			break
		}
	}
	a, b := clients[0], clients[1]
	errCode(t, "commit", h.call("g", commitReq("a", a.epoch, "t", 17)).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	before := h.consumerDescribe()
	if before.Epoch != 2 || len(before.Members) != 2 {
		t.Fatalf("before restart: %+v", before)
	}
	h.close()

	h = newGroupHarness(t, disk)
	defer h.close()
	h.co.cfg.ConsumerSessionTimeout = time.Second // set before the group loads
	after := h.consumerDescribe()
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("reloaded group differs:\nbefore %+v\nafter  %+v", before, after)
	}
	// Both members carry on at their epochs, owning what they owned.
	for _, c := range clients {
		epoch, owned := c.epoch, append([]int32(nil), c.owned...)
		h.beat(c, topic)
		if c.epoch != epoch || !reflect.DeepEqual(c.owned, owned) {
			t.Fatalf("%s after restart: epoch %d owns %v, had %d %v", c.id, c.epoch, c.owned, epoch, owned)
		}
	}
	commit := commitReq("a", a.epoch, "t", 18)
	errCode(t, "commit after restart", h.call("g", commit).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	if err := h.co.ValidateOffsetFetch("g", &a.id, a.epoch); err != nil {
		t.Fatalf("OffsetFetch after restart: %v", err)
	}

	// b's session runs again: silent, it expires, and a takes everything.
	wait.For(t, 10*time.Second, func() error { // until b's session to expire
		h.beat(a, topic)
		if len(a.owned) != 4 {
			return fmt.Errorf("a owns %v", a.owned)
		}
		return nil
	})
	errCode(t, "expired member", h.call("g", cghReq("b", b.epoch, topic, b.owned)).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode, kerr.UnknownMemberID)
	if st := store().consumerGroup("g"); st.members["b"] != nil || st.members["a"].current.MemberEpoch != a.epoch || st.meta.Epoch != a.epoch {
		t.Fatalf("store after b expired: %+v", st)
	}

	// a leaves: the group stays, Empty, at its epoch.
	r := h.call("g", cghReq("a", leaveEpoch, topic, nil)).(*kmsg.ConsumerGroupHeartbeatResponse)
	errCode(t, "leave", r.ErrorCode, nil)
	st := store().consumerGroup("g")
	if st == nil || len(st.members) != 0 || st.meta.Epoch != a.epoch+1 {
		t.Fatalf("store after a left: %+v", st)
	}
	if d := h.consumerDescribe(); d.State != "Empty" || d.Epoch != a.epoch+1 {
		t.Fatalf("after leave: %+v", d)
	}
	// DeleteGroups removes every record of it.
	if err, _ := h.ask("g", &DeleteOp{}).(*kerr.Error); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if store().has("g") {
		t.Fatalf("deleted group still stored: %+v", store().consumerGroup("g"))
	}
}

// An empty consumer group given back to the classic protocol by a
// JoinGroup loses its consumer group records.
func TestConsumerGroupToClassicTombstones(t *testing.T) {
	h := newGroupHarness(t, newOffsetsDisk())
	defer h.close()
	topic := h.createTopic("t", 1)
	a := &consumerClient{id: "a"}
	h.beat(a, topic)
	errCode(t, "leave", h.call("g", cghReq("a", leaveEpoch, topic, nil)).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode, nil)
	store := h.store("g")
	if store.consumerGroup("g") == nil {
		t.Fatal("empty consumer group not stored")
	}
	ja, _ := h.join("range")
	h.await(ja)
	if st := store.consumerGroup("g"); st != nil {
		t.Fatalf("consumer records after the classic join: %+v", st)
	}
}

// After a failed write the actor cannot tell what the log holds: the next
// write rewrites the whole group and tombstones every member it or the
// store knows of that is gone.
func TestConsumerRecordsResyncAfterFailedWrite(t *testing.T) {
	s := newGroupStore()
	observe(s,
		consumerRecord(consumerKey{typ: 5, group: "g", member: "y"}, (&cgMemberValue{ClientID: "y"}).encode()),
		consumerRecord(consumerKey{typ: 3, group: "g"}, (&cgMetadataValue{Epoch: 1}).encode()),
	)
	g := &group{name: "g", store: s, kind: groupConsumer}
	g.consumer.init()
	g.consumer.epoch = 2
	g.consumer.members["z"] = &consumerMember{id: "z", epoch: 2}
	// What this actor believes it wrote: x, whose write failed.
	g.consumer.saved = consumerSaved{meta: (&cgMetadataValue{Epoch: 2}).encode(),
		members: map[string]*savedMember{"x": {meta: []byte{1}, current: []byte{1}}}}
	g.consumer.resync = true
	var got []string
	for _, r := range g.consumerRecords() {
		k, _ := decodeConsumerKey(r.Key)
		got = append(got, fmt.Sprintf("%d%s/%v", k.typ, k.member, r.Value != nil))
	}
	want := []string{"8x/false", "5x/false", "5y/false", "5z/true", "3/true", "8z/true"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if g.consumer.resync || len(g.consumerRecords()) != 0 {
		t.Fatal("a second write after the resync is not empty")
	}
}
