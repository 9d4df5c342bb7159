package actors

// ListGroups v0-v5: the groups of the __consumer_offsets partitions this
// node leads, simple consumers' included. States filter from v4 (KIP-518),
// types filter from v5 (KIP-848), both case-insensitive as in Kafka.

import (
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ListGroups, handleListGroups) }

func handleListGroups(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	for _, l := range c.b.groups.ListGroups() {
		if !matchesFilter(req.StatesFilter, l.State.String()) || !matchesFilter(req.TypesFilter, l.Kind.String()) {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = l.Name, l.ProtocolType, l.State.String(), l.Kind.String()
		resp.Groups = append(resp.Groups, g)
	}
	c.respond(r, resp)
}

// matchesFilter: an empty filter matches everything.
func matchesFilter(filter []string, v string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		if strings.EqualFold(f, v) {
			return true
		}
	}
	return false
}
