package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestFetchSessions drives an incremental fetch session (KIP-227) with raw
// Fetch v12 requests: a full fetch opens a session and lists every
// partition; an incremental fetch with nothing new lists none; after a
// produce it lists only the partition with records; a wrong epoch and an
// unknown session id get their errors; epoch -1 closes the session.
func TestFetchSessions(t *testing.T) {
	tg := StartTarget(t)
	const topic = "fetch-sessions"
	CreateTopic(t, tg.Addr(), topic, 3, nil)
	// v12: the last version that names topics (v13+ uses topic ids).
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(1, 12)
	cl := NewClient(t, tg.Addr(), kgo.MaxVersions(versions))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	fetch := func(id, epoch int32, parts []int32, offsets map[int32]int64) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 50
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		req.SessionID, req.SessionEpoch = id, epoch
		if len(parts) > 0 {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			for _, p := range parts {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offsets[p], 1<<20
				rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		return resp
	}
	listed := func(resp *kmsg.FetchResponse) map[int32]int {
		out := map[int32]int{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("partition %d: %v", rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
				}
				out[rp.Partition] = len(rp.RecordBatches)
			}
		}
		return out
	}

	full := fetch(0, 0, []int32{0, 1, 2}, map[int32]int64{})
	if full.ErrorCode != 0 || full.SessionID == 0 {
		t.Fatalf("full fetch: error %d, session id %d; want a new session", full.ErrorCode, full.SessionID)
	}
	if got := listed(full); len(got) != 3 {
		t.Fatalf("full fetch lists partitions %v, want all 3", got)
	}
	id := full.SessionID

	if got := listed(fetch(id, 1, nil, nil)); len(got) != 0 {
		t.Fatalf("incremental fetch with nothing new lists %v, want none", got)
	}

	r := &kgo.Record{Topic: topic, Partition: 1, Value: []byte("v")}
	pcl := NewClient(t, tg.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pcl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	got := listed(fetch(id, 2, nil, nil))
	if len(got) != 1 || got[1] == 0 {
		t.Fatalf("incremental fetch after a produce to partition 1 lists %v, want only partition 1 with records", got)
	}
	// The client moves partition 1's offset past the record: nothing new.
	if got := listed(fetch(id, 3, []int32{1}, map[int32]int64{1: 1})); len(got) != 0 {
		t.Fatalf("incremental fetch at the end lists %v, want none", got)
	}

	if resp := fetch(id, 9, nil, nil); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("wrong epoch: error %d, want INVALID_FETCH_SESSION_EPOCH", resp.ErrorCode)
	}
	if resp := fetch(id+1000, 1, nil, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: error %d, want FETCH_SESSION_ID_NOT_FOUND", resp.ErrorCode)
	}
	if resp := fetch(id, -1, []int32{0}, map[int32]int64{}); resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Fatalf("closing fetch: error %d, session %d; want a sessionless answer", resp.ErrorCode, resp.SessionID)
	}
	if resp := fetch(id, 4, nil, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("fetch on a closed session: error %d, want FETCH_SESSION_ID_NOT_FOUND", resp.ErrorCode)
	}
}
