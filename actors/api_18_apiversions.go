package actors

// ApiVersions v0-v4: the supported range of every API, exactly protocol's
// table. Requests at versions we don't serve are answered in conn.go.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

func init() { register(kmsg.ApiVersions, handleApiVersions) }

func handleApiVersions(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = protocol.ApiVersionsKeys()
	c.respond(r, resp)
}
