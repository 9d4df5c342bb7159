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

// TestFetchSessionNotBlockedByOtherClient: a fetch naming a session
// whose own fetch is long-polling is refused at once. It used to wait for
// the long poll under the node-wide session lock, stalling every session
// fetch of the node meanwhile.
func TestFetchSessionNotBlockedByOtherClient(t *testing.T) {
	tg := StartTarget(t)
	tg.SkipOnKfake(t, "chronik fetch-session locking")
	const topic = "fetch-session-busy"
	CreateTopic(t, tg.Addr(), topic, 1, nil)
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(1, 12)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	fetchReq := func(id, epoch, maxWait int32) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = maxWait
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		req.SessionID, req.SessionEpoch = id, epoch
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}

	owner := NewClient(t, tg.Addr(), kgo.MaxVersions(versions))
	open, err := fetchReq(0, 0, 10).RequestWith(ctx, owner)
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	if err := kerr.ErrorForCode(open.ErrorCode); err != nil || open.SessionID == 0 {
		t.Fatalf("open session: id %d, err %v", open.SessionID, err)
	}
	id := open.SessionID

	// The owner's incremental fetch parks for 3 s: the topic is empty.
	polled := make(chan error, 1)
	go func() {
		resp, err := fetchReq(id, 1, 3000).RequestWith(ctx, owner)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		polled <- err
	}()
	// Let the long poll take the session. Deliberately a sleep: nothing a
	// client can observe says the owner's fetch has reached the broker and
	// parked (asking would itself be a session fetch, the thing under test).
	time.Sleep(300 * time.Millisecond)

	intruder := NewClient(t, tg.Addr(), kgo.MaxVersions(versions))
	start := time.Now()
	resp, err := fetchReq(id, 2, 10).RequestWith(ctx, intruder)
	if err != nil {
		t.Fatalf("intruding fetch: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("fetch naming a busy session took %v: it waited for the other client's long poll", took)
	}
	if resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("fetch naming a busy session: %v, want INVALID_FETCH_SESSION_EPOCH", kerr.ErrorForCode(resp.ErrorCode))
	}
	if err := <-polled; err != nil {
		t.Fatalf("owner's long poll: %v", err)
	}
}
