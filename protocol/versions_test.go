package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestApiVersionsKeysMatchTable(t *testing.T) {
	keys := ApiVersionsKeys()
	if len(keys) != len(apiTable) {
		t.Fatalf("%d keys advertised, table has %d rows", len(keys), len(apiTable))
	}
	for i, k := range keys {
		if i > 0 && keys[i-1].ApiKey >= k.ApiKey {
			t.Fatalf("keys not sorted and unique at %d: %d after %d", i, k.ApiKey, keys[i-1].ApiKey)
		}
		r, ok := SupportedVersions(k.ApiKey)
		if !ok || r.Min != k.MinVersion || r.Max != k.MaxVersion {
			t.Fatalf("key %d advertised %d-%d, SupportedVersions = %v %v", k.ApiKey, k.MinVersion, k.MaxVersion, r, ok)
		}
	}
	if _, ok := SupportedVersions(9999); ok {
		t.Fatal("key 9999 reported as supported")
	}
}

// Every row must be something kmsg can decode and encode, or ParseRequest
// and AppendResponse would fail on versions we advertise.
func TestTableWithinKmsg(t *testing.T) {
	for _, row := range apiTable {
		req, resp := row.key.Request(), row.key.Response()
		if req == nil || resp == nil {
			t.Fatalf("key %d unknown to kmsg", row.key)
		}
		if row.Min < 0 || row.Min > row.Max || row.Max > req.MaxVersion() || row.Max > resp.MaxVersion() {
			t.Errorf("%s: range %d-%d, kmsg max %d", row.key.Name(), row.Min, row.Max, req.MaxVersion())
		}
	}
}

func TestTableRanges(t *testing.T) {
	want := map[kmsg.Key]VersionRange{
		kmsg.ApiVersions: {0, 4}, kmsg.Metadata: {0, 12}, kmsg.Produce: {3, 12},
		kmsg.Fetch: {4, 17}, kmsg.ListOffsets: {1, 10}, kmsg.CreateTopics: {2, 7},
		kmsg.DeleteTopics: {1, 6}, kmsg.InitProducerID: {0, 5},
		kmsg.OffsetForLeaderEpoch: {2, 4}, kmsg.DescribeCluster: {0, 2},
		kmsg.TxnOffsetCommit: {0, 5},
	}
	for k, w := range want {
		if got, ok := SupportedVersions(k.Int16()); !ok || got != w {
			t.Errorf("%s: %v %v, want %v", k.Name(), got, ok, w)
		}
	}
}
