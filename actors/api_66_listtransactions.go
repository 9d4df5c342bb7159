package actors

// ListTransactions v0-v2: the transactions of every __transaction_state
// partition this node leads (admin clients ask every broker and merge).

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ListTransactions, handleListTransactions) }

func handleListTransactions(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states, unknown, err := c.b.txns.List(req, time.Now())
	resp.ErrorCode, resp.TransactionStates, resp.UnknownStateFilters = codeOf(err), states, unknown
	c.respond(r, resp)
}
