package actors

// DescribeTransactions v0: the state of each transactional id this node
// coordinates, as its last record says; NOT_COORDINATOR for the others
// (admin clients ask each id's coordinator).

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeTransactions, handleDescribeTransactions) }

func handleDescribeTransactions(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		if err := txnIDError(id); err != nil {
			st := kmsg.NewDescribeTransactionsResponseTransactionState()
			st.TransactionalID, st.ErrorCode = id, err.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		resp.TransactionStates = append(resp.TransactionStates, c.b.txns.Describe(id))
	}
	c.respond(r, resp)
}
