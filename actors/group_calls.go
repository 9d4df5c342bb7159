package actors

import (
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// How connection handlers call group actors: a single-group request is
// handed over with a reply that completes the request on its connection;
// requests naming many groups ask each with a future and merge on the
// connection's goroutine.

// groupAskTimeout bounds a fan-out ask; group actors answer at once, so
// only a stopped node reaches it.
const groupAskTimeout = 30 * time.Second

// callGroup hands r to its group's actor (after the coordinator check);
// the actor answers it, now or when the rebalance completes.
func (c *conn) callGroup(ctx actor.Context, r *request, group string) {
	if err := c.b.groups.coordinatorErr(group); err != nil {
		c.respond(r, callError(r.req, err).(kmsg.Response))
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	c.b.groups.route(group, &groupCall{op: r.req, client: c.clientInfo(r), reply: answerOnce(func(v any) {
		root.Send(self, &asyncDone{seq: r.seq, frame: protocol.AppendResponse(nil, r.hdr, v.(kmsg.Response))})
	})})
}

// answerOnce makes a call's reply idempotent: a group actor that panics
// answers the call it was handling, which may have been answered already.
// Replies run on the group actor's goroutine only, so a flag suffices.
func answerOnce(reply func(any)) func(any) {
	done := false
	return func(v any) {
		if !done {
			done = true
			reply(v)
		}
	}
}

// askGroup sends op to group's actor; then runs on the connection's
// goroutine with the reply, or with nil if none came.
func (c *conn) askGroup(ctx actor.Context, r *request, group string, op any, then func(any)) {
	f := actor.NewFuture(ctx.ActorSystem(), groupAskTimeout)
	root := ctx.ActorSystem().Root
	c.b.groups.route(group, &groupCall{op: op, client: c.clientInfo(r), reply: answerOnce(func(v any) {
		root.Send(f.PID(), v)
	})})
	ctx.ReenterAfter(f, func(v any, err error) {
		if err != nil {
			v = nil
		}
		then(v)
	})
}

// askGroups asks the actor of each named group newOp()'s question, as the
// batched group APIs do. each gets every group's answer, or the error that
// kept it from being asked (no coordinator here, an empty name), on the
// connection's actor; done runs once all have come back.
func (c *conn) askGroups(ctx actor.Context, r *request, names []string, newOp func() any, each func(i int, v any, err *kerr.Error), done func()) {
	g := newGather(done)
	for i, name := range names {
		err := c.b.groups.coordinatorErr(name)
		if name == "" {
			err = kerr.InvalidGroupID
		}
		if err != nil {
			each(i, nil, err)
			continue
		}
		g.add()
		c.askGroup(ctx, r, name, newOp(), func(v any) {
			each(i, v, nil)
			g.done()
		})
	}
	g.done()
}

func (c *conn) clientInfo(r *request) clientInfo {
	host := c.nc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	// Kafka reports the client's InetAddress, printed with a leading slash.
	return clientInfo{id: r.hdr.ClientID, host: "/" + host}
}

// callError is op's answer when it fails as a whole with err.
func callError(op any, err *kerr.Error) any {
	switch req := op.(type) {
	case *kmsg.JoinGroupRequest:
		return joinError(req, req.MemberID, err)
	case *kmsg.SyncGroupRequest:
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = err.Code
		return resp
	case *kmsg.HeartbeatRequest:
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = err.Code
		return resp
	case *kmsg.LeaveGroupRequest:
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = err.Code
		return resp
	case *kmsg.OffsetCommitRequest:
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, err.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	case *kmsg.OffsetDeleteRequest:
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = err.Code
		return resp
	case *describeOp:
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.ErrorCode = err.Code
		return d
	case *deleteOp:
		return err
	}
	return err
}
