package raftactor

import (
	"encoding/json"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A controller command proposed on a node that does not lead the
// controller goes to the leader over the peer transport; these encode the
// outcome for the way back.

type wireResult struct {
	Topic      *Topic `json:"topic,omitempty"`
	ProducerID int64  `json:"producer_id,omitempty"`
	ErrCode    int16  `json:"err_code,omitempty"`
	// NotApplied names why the command was never applied (not_leader,
	// stopped, or an error's text).
	NotApplied string `json:"not_applied,omitempty"`
}

// EncodeControllerOutcome encodes what proposing a command returned: the
// result, or err when it was never applied.
func EncodeControllerOutcome(res *ControllerResult, err error) []byte {
	var w wireResult
	switch {
	case errors.Is(err, ErrNotLeader):
		w.NotApplied = "not_leader"
	case errors.Is(err, ErrStopped):
		w.NotApplied = "stopped"
	case err != nil:
		w.NotApplied = err.Error()
	case res != nil:
		w.Topic, w.ProducerID = res.Topic, res.ProducerID
		if res.Err != nil {
			w.ErrCode = res.Err.Code
		}
	}
	b, _ := json.Marshal(w)
	return b
}

// DecodeControllerOutcome is EncodeControllerOutcome's inverse.
func DecodeControllerOutcome(b []byte) (*ControllerResult, error) {
	var w wireResult
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	switch w.NotApplied {
	case "":
	case "not_leader":
		return nil, ErrNotLeader
	case "stopped":
		return nil, ErrStopped
	default:
		return nil, errors.New(w.NotApplied)
	}
	res := &ControllerResult{Topic: w.Topic, ProducerID: w.ProducerID}
	if w.ErrCode != 0 {
		if ke, ok := kerr.ErrorForCode(w.ErrCode).(*kerr.Error); ok {
			res.Err = ke
		} else {
			res.Err = kerr.UnknownServerError
		}
	}
	return res, nil
}
