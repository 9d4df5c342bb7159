package actors

import (
	"net"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/groups"
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
	if err := c.b.groups.CoordinatorErr(group); err != nil {
		c.respond(r, groups.CallError(r.req, err).(kmsg.Response))
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	c.b.groups.Route(group, groups.NewCall(r.req, c.clientInfo(r), func(v any) {
		root.Send(self, &asyncDone{seq: r.seq, frame: protocol.AppendResponse(nil, r.hdr, v.(kmsg.Response))})
	}))
}

// askGroup sends op to group's actor; then runs on the connection's
// goroutine with the reply, or with nil if none came.
func (c *conn) askGroup(ctx actor.Context, r *request, group string, op any, then func(any)) {
	f := actor.NewFuture(ctx.ActorSystem(), groupAskTimeout)
	root := ctx.ActorSystem().Root
	c.b.groups.Route(group, groups.NewCall(op, c.clientInfo(r), func(v any) {
		root.Send(f.PID(), v)
	}))
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
		err := c.b.groups.CoordinatorErr(name)
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

func (c *conn) clientInfo(r *request) groups.ClientInfo {
	host := c.nc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	// Kafka reports the client's InetAddress, printed with a leading slash.
	return groups.ClientInfo{ID: r.hdr.ClientID, Host: "/" + host}
}
