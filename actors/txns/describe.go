package txns

import (
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Describe answers DescribeTransactions for one id from its partition's
// store: what the last record written says.
func (co *Coordinator) Describe(id string) kmsg.DescribeTransactionsResponseTransactionState {
	st := kmsg.NewDescribeTransactionsResponseTransactionState()
	st.TransactionalID = id
	if err := co.CoordinatorErr(id); err != nil {
		st.ErrorCode = err.Code
		return st
	}
	v, ok := co.store(co.PartitionFor(id)).get(id)
	if !ok {
		st.ErrorCode = kerr.TransactionalIDNotFound.Code
		return st
	}
	st.State = stateName(v.State)
	st.TimeoutMillis = v.TimeoutMillis
	st.StartTimestamp = -1
	if v.State == stateOngoing || v.State == statePrepareCommit || v.State == statePrepareAbort {
		st.StartTimestamp = v.StartTimestamp
	}
	st.ProducerID, st.ProducerEpoch = v.ProducerID, v.ProducerEpoch
	for _, vt := range v.Topics {
		dt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
		dt.Topic, dt.Partitions = vt.Topic, append([]int32(nil), vt.Partitions...)
		st.Topics = append(st.Topics, dt)
	}
	return st
}

// List answers ListTransactions with the transactions of every partition
// led here, filtered as the request asks (states, producer ids, v1+ the
// minimum running time, v2+ an id pattern).
func (co *Coordinator) List(req *kmsg.ListTransactionsRequest, now time.Time) ([]kmsg.ListTransactionsResponseTransactionState, []string, *kerr.Error) {
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := regexp.Compile(*req.TransactionalIDPattern)
		if err != nil {
			return nil, nil, kerr.InvalidRegularExpression
		}
		pattern = re
	}
	states := map[string]bool{}
	var unknown []string
	for _, s := range req.StateFilters {
		if _, err := kmsg.ParseTransactionState(s); err != nil {
			unknown = append(unknown, s)
		}
		states[s] = true
	}
	pids := map[int64]bool{}
	for _, p := range req.ProducerIDFilters {
		pids[p] = true
	}
	var out []kmsg.ListTransactionsResponseTransactionState
	for p, s := range co.allStores() {
		if r := co.node.StateReplica(p); r == nil || !r.LeaderReady() {
			continue
		}
		for _, id := range s.ids() {
			v, ok := s.get(id)
			if !ok {
				continue
			}
			name := stateName(v.State)
			switch {
			case len(states) > 0 && !states[name]:
				continue
			case len(pids) > 0 && !pids[v.ProducerID]:
				continue
			case req.Version >= 1 && req.DurationFilterMillis >= 0 && (v.State != stateOngoing || now.UnixMilli()-v.StartTimestamp < req.DurationFilterMillis):
				continue
			case pattern != nil && !pattern.MatchString(id):
				continue
			}
			ls := kmsg.NewListTransactionsResponseTransactionState()
			ls.TransactionalID, ls.ProducerID, ls.TransactionState = id, v.ProducerID, name
			out = append(out, ls)
		}
	}
	return out, unknown, nil
}
