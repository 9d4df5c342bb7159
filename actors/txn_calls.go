package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors/txns"
	"github.com/chronik-actor/chronik-actor/protocol"
)

// callTxn hands op to the actor of transactional id's partition (after
// the coordinator check); answer turns its reply into r's response,
// written on the connection in order once it comes.
func (c *conn) callTxn(ctx actor.Context, r *request, id string, op any, answer func(any) kmsg.Response) {
	if !c.b.ensureTxnTopic() {
		c.respond(r, answer(txns.CallError(op, kerr.CoordinatorNotAvailable)))
		return
	}
	if err := c.b.txns.CoordinatorErr(id); err != nil {
		c.respond(r, answer(txns.CallError(op, err)))
		return
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	c.b.txns.Route(id, txns.NewCall(op, func(v any) {
		root.Send(self, &asyncDone{seq: r.seq, frame: protocol.AppendResponse(nil, r.hdr, answer(v))})
	}))
}

// txnIDError is the error for a transactional id no transaction can
// have: empty (Kafka: INVALID_REQUEST), or longer than the int16 length
// its records' keys can hold.
func txnIDError(id string) *kerr.Error {
	if id == "" || len(id) > 32767 {
		return kerr.InvalidRequest
	}
	return nil
}

// codeOf is err's code, 0 for nil.
func codeOf(err *kerr.Error) int16 {
	if err == nil {
		return 0
	}
	return err.Code
}
