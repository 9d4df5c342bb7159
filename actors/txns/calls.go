package txns

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Call is a request routed to the actor of a transactional id's
// partition. reply answers it exactly once, from the actor's goroutine.
// op is an *kmsg.InitProducerIDRequest, an *kmsg.EndTxnRequest or an
// *AddOp.
type Call struct {
	op    any
	reply func(any)
}

// NewCall is a call of op; reply gets the answer, once.
func NewCall(op any, reply func(any)) *Call {
	done := false
	return &Call{op: op, reply: func(v any) {
		if !done {
			done = true
			reply(v)
		}
	}}
}

// AddOp adds partitions to a transaction (AddPartitionsToTxn, and
// AddOffsetsToTxn for the group's __consumer_offsets partition) or, with
// VerifyOnly, checks that they are in it: a partition leader does before
// it takes a transaction's first batch (KIP-890 part 1). The reply is an
// *AddResult.
type AddOp struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Partitions      map[string][]int32
	VerifyOnly      bool
	// Group, for AddOffsetsToTxn: its offsets partition is the one added.
	Group string
	// Version is the request's, for the errors older clients know.
	Version int16
	Key     int16
}

// AddResult answers an AddOp: Err for the whole request, or one error
// (nil: added, or in the transaction) per partition.
type AddResult struct {
	Err        *kerr.Error
	Partitions map[string]map[int32]*kerr.Error
}

// InitResult answers an InitProducerId.
type InitResult struct {
	Err           *kerr.Error
	ProducerID    int64
	ProducerEpoch int16
}

// CallError is op's answer when it fails as a whole with err.
func CallError(op any, err *kerr.Error) any {
	switch op.(type) {
	case *kmsg.InitProducerIDRequest:
		return &InitResult{Err: err, ProducerID: -1, ProducerEpoch: -1}
	case *AddOp:
		return &AddResult{Err: err}
	}
	return err // EndTxn: its only field
}

// fenced is the error for a stale producer epoch: PRODUCER_FENCED,
// which came with KIP-588, or INVALID_PRODUCER_EPOCH for the request
// versions before it.
func fenced(key, version int16) *kerr.Error {
	before := map[int16]int16{
		kmsg.InitProducerID.Int16():     4,
		kmsg.AddPartitionsToTxn.Int16(): 2,
		kmsg.AddOffsetsToTxn.Int16():    2,
		kmsg.EndTxn.Int16():             2,
	}
	if v, ok := before[key]; ok && version < v {
		return kerr.InvalidProducerEpoch
	}
	return kerr.ProducerFenced
}
