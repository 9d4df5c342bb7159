package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handler serves one decoded request; it answers through c.respond,
// c.noResponse or c.async, now or later.
type handler func(c *conn, ctx actor.Context, r *request)

// handlers maps every API key of protocol's version table to its handler
// (one file per API, api_<key>_<name>.go).
var handlers = map[kmsg.Key]handler{}

func register(k kmsg.Key, h handler) { handlers[k] = h }

func handle(c *conn, ctx actor.Context, r *request) {
	h, ok := handlers[kmsg.Key(r.hdr.Key)]
	if !ok {
		// protocol's table and this map disagree: a bug, not bad input.
		c.log.Error("no handler for a supported API; closing connection", "api_key", r.hdr.Key)
		ctx.Stop(ctx.Self())
		return
	}
	c.b.metrics.request(r.hdr.Key)
	h(c, ctx, r)
}
