package actors

// DescribeConfigs v1-v4 (Kafka 4 dropped v0): a topic's configs, those set
// on it (DYNAMIC_TOPIC_CONFIG) and the defaults it runs with
// (DEFAULT_CONFIG); and a broker's settings that shape topics
// (STATIC_BROKER_CONFIG). Configs are read-only here: they are set when a
// topic is created.

import (
	"sort"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeConfigs, handleDescribeConfigs) }

// configEntry is one config as DescribeConfigs reports it.
type configEntry struct {
	name, value string
	typ         kmsg.ConfigType
	source      kmsg.ConfigSource
}

func handleDescribeConfigs(c *conn, ctx actor.Context, r *request) {
	req := r.req.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	md := c.b.controller.Metadata()
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := md.Topics[rr.ResourceName]
			if t == nil {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			entries = c.b.topicConfigEntries(t.Configs)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(c.b.cfg.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := "broker " + rr.ResourceName + " is not this node"
				sr.ErrorMessage = &msg
				break
			}
			entries = c.b.brokerConfigEntries()
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "only topic and broker configs are served"
			sr.ErrorMessage = &msg
		}
		want := map[string]bool{}
		for _, n := range rr.ConfigNames {
			want[n] = true
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !want[e.name] {
				continue
			}
			sc := kmsg.NewDescribeConfigsResponseResourceConfig()
			v := e.value
			sc.Name, sc.Value, sc.Source, sc.ConfigType = e.name, &v, e.source, e.typ
			sc.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
			sc.ReadOnly = rr.ResourceType == kmsg.ConfigResourceTypeBroker
			sr.Configs = append(sr.Configs, sc)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	c.respond(r, resp)
}

// topicConfigEntries lists every topic config this broker knows: those
// set on the topic, and the defaults for the rest.
func (b *Broker) topicConfigEntries(set map[string]string) []configEntry {
	defaults := map[string]configEntry{
		"retention.ms":           {value: "604800000", typ: kmsg.ConfigTypeLong},
		"retention.bytes":        {value: "-1", typ: kmsg.ConfigTypeLong},
		"max.message.bytes":      {value: strconv.Itoa(defaultMaxMessageBytes), typ: kmsg.ConfigTypeInt},
		"segment.bytes":          {value: strconv.FormatInt(b.cfg.SegmentBytes, 10), typ: kmsg.ConfigTypeInt},
		"cleanup.policy":         {value: "delete", typ: kmsg.ConfigTypeList},
		"min.insync.replicas":    {value: "1", typ: kmsg.ConfigTypeInt},
		"compression.type":       {value: "producer", typ: kmsg.ConfigTypeString},
		"message.timestamp.type": {value: "CreateTime", typ: kmsg.ConfigTypeString},
	}
	var out []configEntry
	for name, d := range defaults {
		d.name, d.source = name, kmsg.ConfigSourceDefaultConfig
		if v, ok := set[name]; ok {
			d.value, d.source = v, kmsg.ConfigSourceDynamicTopicConfig
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// brokerConfigEntries are the node's settings, as Kafka names them.
func (b *Broker) brokerConfigEntries() []configEntry {
	src := kmsg.ConfigSourceStaticBrokerConfig
	out := []configEntry{
		{"auto.create.topics.enable", strconv.FormatBool(b.cfg.AutoCreateTopics), kmsg.ConfigTypeBoolean, src},
		{"broker.id", strconv.Itoa(int(b.cfg.NodeID)), kmsg.ConfigTypeInt, src},
		{"default.replication.factor", strconv.Itoa(int(b.cfg.DefaultReplicationFactor)), kmsg.ConfigTypeInt, src},
		{"log.dirs", b.cfg.DataDir, kmsg.ConfigTypeString, src},
		{"log.segment.bytes", strconv.FormatInt(b.cfg.SegmentBytes, 10), kmsg.ConfigTypeInt, src},
		{"message.max.bytes", strconv.Itoa(defaultMaxMessageBytes), kmsg.ConfigTypeInt, src},
		{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions)), kmsg.ConfigTypeInt, src},
		{"offsets.retention.minutes", strconv.FormatInt(int64(b.cfg.OffsetsRetention.Minutes()), 10), kmsg.ConfigTypeInt, src},
		{"offsets.topic.num.partitions", strconv.Itoa(int(b.cfg.OffsetsPartitions)), kmsg.ConfigTypeInt, src},
	}
	return out
}
