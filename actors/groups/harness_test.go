package groups

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupHarness drives group actors the way connections do, through the
// coordinator's Route, over a fake node (fakenode_test.go); it answers on
// channels.
type groupHarness struct {
	t    *testing.T
	sys  *actor.ActorSystem
	node *fakeNode
	co   *Coordinator
}

// newGroupHarness starts a coordinator on disk, as a node (re)starting on
// its data does.
func newGroupHarness(t *testing.T, disk *offsetsDisk) *groupHarness {
	t.Helper()
	h := &groupHarness{t: t, sys: actor.NewActorSystem()}
	h.node, h.co = startFakeNode(t, h.sys, disk, func(n *fakeNode) *Coordinator {
		return New(h.sys, n, Config{OffsetsPartitions: testOffsetsPartitions})
	})
	h.co.Start()
	if err := h.co.CoordinatorErr("g"); err != nil {
		t.Fatalf("coordinator not ready: %v", err)
	}
	return h
}

// close stops the node; its disk stays for the next harness.
func (h *groupHarness) close() {
	h.co.Stop()
	h.sys.Shutdown()
}

// createTopic creates a topic in the node's metadata.
func (h *groupHarness) createTopic(name string, partitions int32) [16]byte {
	return h.node.createTopic(name, partitions)
}

// store is the state of group's offsets partition.
func (h *groupHarness) store(group string) *groupStore { return h.co.store(h.co.PartitionFor(group)) }

func (h *groupHarness) send(group string, req kmsg.Request) <-chan kmsg.Response {
	ch := make(chan kmsg.Response, 1)
	h.co.Route(group, &Call{op: req, client: ClientInfo{ID: "test", Host: "/127.0.0.1"},
		reply: func(v any) { ch <- v.(kmsg.Response) }})
	return ch
}

func (h *groupHarness) await(ch <-chan kmsg.Response) kmsg.Response {
	h.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatal("no answer from the group")
		return nil
	}
}

// pending checks that a held request has not been answered yet.
func (h *groupHarness) pending(ch <-chan kmsg.Response, what string) {
	h.t.Helper()
	select {
	case r := <-ch:
		h.t.Fatalf("%s answered early: %+v", what, r)
	case <-time.After(50 * time.Millisecond):
	}
}

func (h *groupHarness) call(group string, req kmsg.Request) kmsg.Response {
	h.t.Helper()
	return h.await(h.send(group, req))
}

func (h *groupHarness) ask(group string, op any) any {
	h.t.Helper()
	ch := make(chan any, 1)
	h.co.Route(group, &Call{op: op, reply: func(v any) { ch <- v }})
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		h.t.Fatal("no answer from the group")
		return nil
	}
}

func (h *groupHarness) describe(group string) kmsg.DescribeGroupsResponseGroup {
	h.t.Helper()
	return h.ask(group, &DescribeOp{}).(kmsg.DescribeGroupsResponseGroup)
}

func joinReq(member string, instance *string, protocols ...string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version, r.Group, r.MemberID, r.InstanceID = 9, "g", member, instance
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis, r.ProtocolType = 10000, 5000, "consumer"
	for _, p := range protocols {
		r.Protocols = append(r.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: []byte("meta-" + p)})
	}
	return r
}

func syncReq(member string, gen int32, assign map[string]string) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version, r.Group, r.MemberID, r.Generation = 5, "g", member, gen
	for id, a := range assign {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(a)})
	}
	return r
}

func heartbeatReq(member string, gen int32, instance *string) *kmsg.HeartbeatRequest {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version, r.Group, r.MemberID, r.Generation, r.InstanceID = 4, "g", member, gen, instance
	return r
}

func commitReq(member string, gen int32, topic string, offset int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version, r.Group, r.MemberID, r.Generation = 9, "g", member, gen
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset = 0, offset
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	return r
}

// join runs the two-step KIP-394 join of a new dynamic member and returns
// the channel of its held second JoinGroup and its member id.
func (h *groupHarness) join(protocols ...string) (<-chan kmsg.Response, string) {
	h.t.Helper()
	return h.joinWith(joinReq("", nil, protocols...))
}

func (h *groupHarness) joinWith(req *kmsg.JoinGroupRequest) (<-chan kmsg.Response, string) {
	h.t.Helper()
	first := h.call("g", req).(*kmsg.JoinGroupResponse)
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		h.t.Fatalf("first join: error %d member %q, want MEMBER_ID_REQUIRED", first.ErrorCode, first.MemberID)
	}
	again := *req
	again.MemberID = first.MemberID
	return h.send("g", &again), first.MemberID
}

func errCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}
