package groups

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Call is a request routed to a group's actor. reply answers it
// exactly once, from the actor's goroutine; op is the kmsg request of a
// single-group API or one of the ops below for requests that fan out.
type Call struct {
	op     any
	client ClientInfo
	reply  func(any)
}

// ClientInfo is who sent a call, as DescribeGroups reports members:
// the client id and "/"+address.
type ClientInfo struct{ ID, Host string }

// The ops of requests naming many groups, asked of each group's actor.
type (
	DescribeOp struct{}                // reply: kmsg.DescribeGroupsResponseGroup
	DeleteOp   struct{}                // reply: *kerr.Error (nil: deleted)
	expireOp   struct{ now time.Time } // from the sweep; no reply
)

// NewCall is a call of op from client; reply gets the answer, once.
func NewCall(op any, client ClientInfo, reply func(any)) *Call {
	return &Call{op: op, client: client, reply: answerOnce(reply)}
}

// answerOnce makes a call's reply idempotent: a group actor that panics
// answers the call it was handling, which may have been answered already.
// Replies run on the group actor's goroutine only, so a flag suffices.
func answerOnce(reply func(any)) func(any) {
	done := false
	return func(v any) {
		if !done {
			done = true
			reply(v)
		}
	}
}

// CallError is op's answer when it fails as a whole with err.
func CallError(op any, err *kerr.Error) any {
	switch req := op.(type) {
	case *kmsg.JoinGroupRequest:
		return joinError(req, req.MemberID, err)
	case *kmsg.SyncGroupRequest:
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = err.Code
		return resp
	case *kmsg.HeartbeatRequest:
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = err.Code
		return resp
	case *kmsg.LeaveGroupRequest:
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = err.Code
		return resp
	case *kmsg.OffsetCommitRequest:
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, err.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	case *kmsg.TxnOffsetCommitRequest:
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, err.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	case *kmsg.OffsetDeleteRequest:
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = err.Code
		return resp
	case *DescribeOp:
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.ErrorCode = err.Code
		return d
	case *DeleteOp:
		return err
	}
	return err
}
