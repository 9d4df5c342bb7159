package raftactor

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestControllerOutcomeRoundTrip(t *testing.T) {
	res, err := DecodeControllerOutcome(EncodeControllerOutcome(&ControllerResult{Topic: &Topic{Name: "a", Groups: []uint64{4}}, Err: kerr.TopicAlreadyExists}, nil))
	if err != nil || res.Topic.Name != "a" || res.Topic.Groups[0] != 4 || !errors.Is(res.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("%+v %v", res, err)
	}
	if res, err := DecodeControllerOutcome(EncodeControllerOutcome(&ControllerResult{ProducerID: 7}, nil)); err != nil || res.ProducerID != 7 || res.Err != nil {
		t.Fatalf("%+v %v", res, err)
	}
	for _, want := range []error{ErrNotLeader, ErrStopped} {
		if _, err := DecodeControllerOutcome(EncodeControllerOutcome(nil, want)); !errors.Is(err, want) {
			t.Fatalf("got %v, want %v", err, want)
		}
	}
}
