package actors

import "github.com/twmb/franz-go/pkg/kerr"

// verifyTxnPartitions asks the transaction coordinator of txnID whether
// every partition in parts is in producer (pid, epoch)'s ongoing
// transaction (AddPartitionsToTxn v4+ VerifyOnly, KIP-890 part 1). done
// gets, for every partition asked, nil (verified: the batch may start the
// transaction there) or the error to answer the produce with; a partition
// missing from the answer is not written (INVALID_TXN_STATE). done may
// run on any goroutine, at once or later, and must not block.
//
// This is a stub that verifies everything; the transaction coordinator
// replaces this file.
func (b *Broker) verifyTxnPartitions(txnID string, pid int64, epoch int16, parts map[string][]int32, done func(map[string]map[int32]*kerr.Error)) {
	out := make(map[string]map[int32]*kerr.Error, len(parts))
	for t, ps := range parts {
		m := make(map[int32]*kerr.Error, len(ps))
		for _, p := range ps {
			m[p] = nil
		}
		out[t] = m
	}
	done(out)
}
