package actors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

// groupHarness drives group actors the way connections do, through the
// coordinator's route, without sockets; it answers on channels.
type groupHarness struct {
	t *testing.T
	b *Broker
}

func newGroupHarness(t *testing.T, dir string) *groupHarness {
	t.Helper()
	b := startTestBroker(t, dir)
	h := &groupHarness{t: t, b: b}
	waitFor(t, 10*time.Second, "coordinator ready", func() error {
		if err := b.groups.coordinatorErr("g"); err != nil {
			return err
		}
		return nil
	})
	return h
}

func (h *groupHarness) send(group string, req kmsg.Request) <-chan kmsg.Response {
	ch := make(chan kmsg.Response, 1)
	h.b.groups.route(group, &groupCall{op: req, client: clientInfo{id: "test", host: "/127.0.0.1"},
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
	h.b.groups.route(group, &groupCall{op: op, reply: func(v any) { ch <- v }})
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
	return h.ask(group, &describeOp{}).(kmsg.DescribeGroupsResponseGroup)
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

// createTopic creates a one-partition topic through the controller, as
// ensureOffsetsTopic does.
func createTopic(t *testing.T, b *Broker, name string) {
	t.Helper()
	f := actor.NewFuture(b.sys, 10*time.Second)
	b.sys.Root.Send(b.controllerPID, &raftactor.Propose{
		Data:    raftactor.CreateTopicCmd(b.newTopic(name, 1, nil)).Encode(),
		ReplyTo: f.PID(),
	})
	v, err := f.Result()
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if res := v.(*raftactor.Result); res.Err != nil {
		t.Fatalf("create %s: %v", name, res.Err)
	}
}
