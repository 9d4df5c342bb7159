package groups

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// The records groups write to __consumer_offsets, in the encodings Kafka
// 2.3+ writes (offset key v1 / value v3, group key v2 / value v3), so the
// topic stays readable by Kafka's own tools and a Kafka broker could load
// it.

func offsetCommitRecord(group, topic string, partition int32, o Offset) protocol.Record {
	k := kmsg.OffsetCommitKey{Version: 1, Group: group, Topic: topic, Partition: partition}
	v := kmsg.OffsetCommitValue{Version: 3, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch,
		Metadata: o.Metadata, CommitTimestamp: o.CommitTimestamp}
	return protocol.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

func offsetTombstone(group, topic string, partition int32) protocol.Record {
	k := kmsg.OffsetCommitKey{Version: 1, Group: group, Topic: topic, Partition: partition}
	return protocol.Record{Key: k.AppendTo(nil)}
}

func groupMetadataRecord(group string, v *kmsg.GroupMetadataValue) protocol.Record {
	k := kmsg.GroupMetadataKey{Version: 2, Group: group}
	v.Version = 3
	return protocol.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

func groupTombstone(group string) protocol.Record {
	k := kmsg.GroupMetadataKey{Version: 2, Group: group}
	return protocol.Record{Key: k.AppendTo(nil)}
}

// offsetTombstones deletes every offset in offs.
func offsetTombstones(group string, offs map[string]map[int32]Offset) []protocol.Record {
	var recs []protocol.Record
	for t, ps := range offs {
		for p := range ps {
			recs = append(recs, offsetTombstone(group, t, p))
		}
	}
	return recs
}
