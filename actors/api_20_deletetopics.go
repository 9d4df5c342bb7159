package actors

// DeleteTopics v1-v6 (by name, or by topic id from v6): the controller
// removes the topic; its apply renames each partition's directory away and
// stops the replica, which removes the data.

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

func init() { register(kmsg.DeleteTopics, handleDeleteTopics) }

func handleDeleteTopics(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			n := n
			targets = append(targets, target{name: &n})
		}
	}
	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, len(targets))
	g := newGather(func() { c.respond(r, resp) })
	md := c.b.controller.Metadata()
	for i, tg := range targets {
		st := &resp.Topics[i]
		*st = kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var name string
		switch {
		case tg.name != nil && *tg.name != "":
			name = *tg.name
			if t := md.Topics[name]; t != nil {
				st.TopicID = t.ID
			}
		case tg.id != [16]byte{}:
			t := md.TopicByID(tg.id)
			if t == nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
				continue
			}
			name = t.Name
			st.Topic = &t.Name
		default:
			st.ErrorCode = kerr.InvalidRequest.Code
			continue
		}
		if md.Topics[name] == nil {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		}
		if internalTopic(name) {
			st.ErrorCode = kerr.InvalidRequest.Code // the groups and transactions live there
			msg := "internal topic " + name + " cannot be deleted"
			st.ErrorMessage = &msg
			continue
		}
		g.add()
		c.proposeController(ctx, raftactor.DeleteTopicCmd(name),
			func(res *raftactor.ControllerResult, err error) {
				switch {
				case err != nil:
					st.ErrorCode = kerr.NotController.Code
				case res.Err != nil:
					st.ErrorCode = res.Err.Code
				}
				g.done()
			})
	}
	g.done()
}
