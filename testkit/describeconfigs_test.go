package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeConfigs asks for a topic's configs with kadm: the one set at
// creation is reported as a topic config with its value, the rest as
// defaults; an unknown topic is an error; the broker's configs list the
// node's settings.
func TestDescribeConfigs(t *testing.T) {
	tg := StartTarget(t)
	tg.SkipOnKfake(t, "chronik's defaults")
	const topic = "describe-configs"
	retention := "3600000"
	CreateTopic(t, tg.Addr(), topic, 1, map[string]*string{"retention.ms": &retention})
	adm := kadm.NewClient(NewClient(t, tg.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	rcs, err := adm.DescribeTopicConfigs(ctx, topic, "no-such-topic")
	if err != nil {
		t.Fatalf("describe topic configs: %v", err)
	}
	got, err := rcs.On(topic, nil)
	if err != nil || got.Err != nil {
		t.Fatalf("%s: %v %v", topic, err, got.Err)
	}
	byName := map[string]kadm.Config{}
	for _, c := range got.Configs {
		byName[c.Key] = c
	}
	if c := byName["retention.ms"]; c.MaybeValue() != retention || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms = %q from %v, want %s set on the topic", c.MaybeValue(), c.Source, retention)
	}
	if c := byName["max.message.bytes"]; c.MaybeValue() != "1048588" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("max.message.bytes = %q from %v, want the default 1048588", c.MaybeValue(), c.Source)
	}
	if missing, err := rcs.On("no-such-topic", nil); err != nil || missing.Err == nil {
		t.Errorf("unknown topic: %v %+v, want UNKNOWN_TOPIC_OR_PARTITION", err, missing)
	}

	brcs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(brcs) != 1 || brcs[0].Err != nil {
		t.Fatalf("describe broker configs: %v %+v", err, brcs)
	}
	found := false
	for _, c := range brcs[0].Configs {
		if c.Key == "offsets.topic.num.partitions" {
			found = c.MaybeValue() != ""
		}
	}
	if !found {
		t.Errorf("broker configs lack offsets.topic.num.partitions: %+v", brcs[0].Configs)
	}
}
