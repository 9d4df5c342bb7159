package protocol

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// VersionRange is the inclusive range of versions served for one API key.
type VersionRange struct{ Min, Max int16 }

// apiTable is the one list of APIs this broker serves. ApiVersions answers
// from it and ParseRequest rejects anything outside it, so advertising and
// accepting cannot drift apart. Clients switch features on from what is
// advertised: add a row only once its handler exists.
//
// Minimums follow Kafka 4, which dropped the pre-2.1 versions (KIP-896).
// Maximums are Kafka 4.0's, never above what kmsg can encode (a test checks);
// a newer version can change a request's shape, so raising a maximum is a
// handler change, not just a table edit. Adding an API is one row here.
var apiTable = []struct {
	key kmsg.Key
	VersionRange
}{
	{kmsg.Produce, VersionRange{3, 12}},           // v3+: magic-2 batches only; v13 names topics by ID, not served yet
	{kmsg.Fetch, VersionRange{4, 17}},             // v4 adds isolation level and aborted transactions
	{kmsg.ListOffsets, VersionRange{1, 10}},       // v0 (offset arrays) is gone in Kafka 4
	{kmsg.Metadata, VersionRange{0, 12}},          // v13 adds a top-level error code, not served yet
	{kmsg.ApiVersions, VersionRange{0, 4}},        // newer asks get UNSUPPORTED_VERSION and the client retries lower
	{kmsg.CreateTopics, VersionRange{2, 7}},       // Kafka 4 dropped v0-1
	{kmsg.DeleteTopics, VersionRange{1, 6}},       // Kafka 4 dropped v0
	{kmsg.InitProducerID, VersionRange{0, 5}},     // v5 is kmsg's newest
	{kmsg.AddPartitionsToTxn, VersionRange{0, 5}}, // v4+ batch transactions and VerifyOnly, for brokers
	{kmsg.AddOffsetsToTxn, VersionRange{0, 4}},
	{kmsg.EndTxn, VersionRange{0, 5}}, // v5 (KIP-890 part 2) answers no new epoch: transaction.version 2 is not advertised
	{kmsg.DescribeTransactions, VersionRange{0, 0}},
	{kmsg.ListTransactions, VersionRange{0, 2}},
	{kmsg.OffsetForLeaderEpoch, VersionRange{2, 4}}, // Kafka 4 dropped v0-1
	{kmsg.DescribeCluster, VersionRange{0, 2}},      // v2 is kmsg's newest
	{kmsg.DescribeConfigs, VersionRange{1, 4}},      // Kafka 4 dropped v0; read-only topic and broker configs
	{kmsg.CreatePartitions, VersionRange{0, 3}},     // v3 is kmsg's newest; adds partitions, every replica on this node
	// Transactions (the coordinator's APIs are served beside the groups').
	{kmsg.WriteTxnMarkers, VersionRange{1, 1}},   // Kafka 4 dropped v0; v2 (TransactionVersion) is Kafka 4.2's
	{kmsg.DescribeProducers, VersionRange{0, 0}}, // KIP-664
	// Classic consumer groups. Kafka 4 dropped some of the oldest versions
	// (KIP-896), but kafka-go and sarama still send them (FindCoordinator
	// v0, JoinGroup v1, OffsetCommit v2, ...) and kmsg encodes them all, so
	// every group API is served from v0.
	{kmsg.OffsetCommit, VersionRange{0, 9}},    // v10 names topics by ID, not served yet
	{kmsg.OffsetFetch, VersionRange{0, 9}},     // v8+ batches groups; v10 names topics by ID
	{kmsg.FindCoordinator, VersionRange{0, 6}}, // v4+ batches keys
	{kmsg.JoinGroup, VersionRange{0, 9}},       // v4+ MEMBER_ID_REQUIRED, v5+ static members
	{kmsg.Heartbeat, VersionRange{0, 4}},
	{kmsg.LeaveGroup, VersionRange{0, 5}}, // v3+ batches members
	{kmsg.SyncGroup, VersionRange{0, 5}},
	{kmsg.DescribeGroups, VersionRange{0, 6}},
	{kmsg.ListGroups, VersionRange{0, 5}}, // v4+ states filter, v5 types filter
	{kmsg.DeleteGroups, VersionRange{0, 3}},
	{kmsg.OffsetDelete, VersionRange{0, 0}},
	// Transactions (KIP-98).
	{kmsg.TxnOffsetCommit, VersionRange{0, 5}}, // v6 names topics by ID (KIP-1319), not served yet
	// KIP-848 consumer groups, at Kafka 4.0's versions (kmsg's newest).
	{kmsg.ConsumerGroupHeartbeat, VersionRange{0, 1}}, // v1: the client makes its member id
	{kmsg.ConsumerGroupDescribe, VersionRange{0, 1}},  // v1 adds the member type
}

// apiRanges indexes apiTable for ParseRequest's per-request lookup.
var apiRanges = func() map[int16]VersionRange {
	m := make(map[int16]VersionRange, len(apiTable))
	for _, row := range apiTable {
		m[row.key.Int16()] = row.VersionRange
	}
	return m
}()

// SupportedVersions returns the served range for key, and false if the key
// is not served at all.
func SupportedVersions(key int16) (VersionRange, bool) {
	r, ok := apiRanges[key]
	return r, ok
}

// ApiVersionsKeys returns the table as ApiVersions response entries, sorted
// by key. The slice is fresh: callers may keep or modify it.
func ApiVersionsKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apiTable))
	for _, row := range apiTable {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey = row.key.Int16()
		k.MinVersion = row.Min
		k.MaxVersion = row.Max
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}
