package testkit

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// rawTxnBatch is rawBatch with the transactional attribute, as a
// transactional producer sends it.
func rawTxnBatch(pid int64, epoch int16, seq int32, values ...[]byte) []byte {
	b := rawBatch(pid, epoch, seq, time.Now().UnixMilli(), values...)
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|0x10)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestTxnPartition drives one partition's side of transactions with raw
// requests, the coordinator writing no markers: a transactional batch holds the
// last stable offset (Fetch and ListOffsets read_committed stop there,
// DescribeProducers shows the open transaction), a WriteTxnMarkers abort
// releases it and read_committed fetches then report the aborted range,
// stale coordinators are fenced, and a read_committed franz-go consumer
// sees only the records outside the aborted transaction.
func TestTxnPartition(t *testing.T) {
	tg := StartTarget(t)
	tg.SkipOnKfake(t, "WriteTxnMarkers is a broker-internal request")
	const topic = "txn-partition"
	CreateTopic(t, tg.Addr(), topic, 1, nil)

	versions := kversion.Stable()
	versions.SetMaxKeyVersion(0, 12) // Produce and Fetch v13 name topics by id
	versions.SetMaxKeyVersion(1, 12)
	cl := NewClient(t, tg.Addr(), kgo.MaxVersions(versions))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The producer is a real transactional one, and the partition is in
	// its transaction (the coordinator checks that before the first
	// batch: KIP-890); the test then plays the coordinator's part in the
	// partition with its own markers.
	txnID := "txn-partition-producer"
	txnCoordinator(t, cl, txnID)
	var pid int64
	var epoch int16
	wait.For(t, 30*time.Second, func() error {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = &txnID, 120000
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && resp.ErrorCode != 0 {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil {
			pid, epoch = resp.ProducerID, resp.ProducerEpoch
		}
		return err
	})
	addPartition := func() {
		t.Helper()
		if code := addPartition0(ctx, t, cl, txnID, pid, epoch, topic); code != 0 {
			t.Fatalf("AddPartitionsToTxn: %v", kerr.ErrorForCode(code))
		}
	}
	addPartition()

	produce := func(id *string, batch []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		return produceRetrying(t, func() kmsg.ProduceResponseTopicPartition {
			req := produceRequest(topic, 0, -1, batch)
			req.TransactionID = id
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatalf("Produce: %v", err)
			}
			return producePartition(t, resp)
		})
	}
	fetch := func(offset int64, isolation int8) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes, req.IsolationLevel = -1, 1<<20, isolation
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = offset, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("Fetch: %v %+v", err, resp)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("Fetch at %d: %v", offset, kerr.ErrorForCode(p.ErrorCode))
		}
		return p
	}
	latest := func(isolation int8) int64 {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID, req.IsolationLevel = -1, isolation
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.CurrentLeaderEpoch = -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("ListOffsets: %v %+v", err, resp)
		}
		return resp.Topics[0].Partitions[0].Offset
	}
	// WriteTxnMarkers goes on a raw connection: kgo fails the whole
	// request when a partition is unknown to its metadata.
	raw := dialRaw(t, tg.Addr())
	markers := func(committed bool, coordEpoch int32, partition int32) int16 {
		t.Helper()
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, committed, coordEpoch
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = topic, []int32{partition}
		m.Topics = append(m.Topics, mt)
		req.Markers = append(req.Markers, m)
		resp := raw.roundTrip(req).(*kmsg.WriteTxnMarkersResponse)
		if len(resp.Markers) != 1 || len(resp.Markers[0].Topics) != 1 || len(resp.Markers[0].Topics[0].Partitions) != 1 {
			t.Fatalf("WriteTxnMarkers: %+v", resp)
		}
		return resp.Markers[0].Topics[0].Partitions[0].ErrorCode
	}

	// A transactional batch without a transactional id is refused.
	if p := produce(nil, rawTxnBatch(pid, epoch, 0, []byte("x"))); p.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional batch without an id: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	// The aborted transaction: offsets 0-1, a plain record at 2.
	if p := produce(&txnID, rawTxnBatch(pid, epoch, 0, []byte("aborted-0"), []byte("aborted-1"))); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("transactional produce: %v at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if p := produce(nil, rawBatch(-1, -1, -1, time.Now().UnixMilli(), []byte("plain"))); p.ErrorCode != 0 || p.BaseOffset != 2 {
		t.Fatalf("plain produce: %v at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if p := fetch(0, 1); len(p.RecordBatches) != 0 || p.LastStableOffset != 0 || p.HighWatermark != 3 || p.AbortedTransactions == nil {
		t.Fatalf("read_committed fetch with the transaction open: %d bytes, LSO %d, HW %d, aborted %v", len(p.RecordBatches), p.LastStableOffset, p.HighWatermark, p.AbortedTransactions)
	}
	if p := fetch(0, 0); len(p.RecordBatches) == 0 || p.LastStableOffset != 0 || p.AbortedTransactions != nil {
		t.Fatalf("read_uncommitted fetch: %d bytes, LSO %d, aborted %v", len(p.RecordBatches), p.LastStableOffset, p.AbortedTransactions)
	}
	if c, u := latest(1), latest(0); c != 0 || u != 3 {
		t.Fatalf("ListOffsets latest: read_committed %d, read_uncommitted %d; want 0 and 3", c, u)
	}
	dpReq := kmsg.NewPtrDescribeProducersRequest()
	dt := kmsg.NewDescribeProducersRequestTopic()
	dt.Topic, dt.Partitions = topic, []int32{0}
	dpReq.Topics = append(dpReq.Topics, dt)
	dp, err := dpReq.RequestWith(ctx, cl)
	if err != nil || len(dp.Topics) != 1 || len(dp.Topics[0].Partitions) != 1 {
		t.Fatalf("DescribeProducers: %v %+v", err, dp)
	}
	if ps := dp.Topics[0].Partitions[0]; ps.ErrorCode != 0 || len(ps.ActiveProducers) != 1 ||
		ps.ActiveProducers[0].ProducerID != pid || ps.ActiveProducers[0].CurrentTxnStartOffset != 0 || ps.ActiveProducers[0].LastSequence != 1 {
		t.Fatalf("DescribeProducers: %+v", ps)
	}

	if code := markers(false, 5, 0); code != 0 {
		t.Fatalf("abort marker: %v", kerr.ErrorForCode(code))
	}
	if code := markers(true, 4, 0); code != kerr.TransactionCoordinatorFenced.Code {
		t.Fatalf("marker from an older coordinator: %v", kerr.ErrorForCode(code))
	}
	if code := markers(true, 5, 7); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("marker for a partition that does not exist: %v", kerr.ErrorForCode(code))
	}
	p := fetch(0, 1)
	if p.LastStableOffset != 4 || p.HighWatermark != 4 || len(p.RecordBatches) == 0 ||
		len(p.AbortedTransactions) != 1 || p.AbortedTransactions[0].ProducerID != pid || p.AbortedTransactions[0].FirstOffset != 0 {
		t.Fatalf("read_committed fetch after the abort: %d bytes, LSO %d, HW %d, aborted %+v", len(p.RecordBatches), p.LastStableOffset, p.HighWatermark, p.AbortedTransactions)
	}
	if p := fetch(3, 1); len(p.AbortedTransactions) != 1 {
		t.Fatalf("read_committed fetch at the abort marker: aborted %+v", p.AbortedTransactions)
	}

	// A committed transaction at 4-5, its marker at 6.
	if p := produce(&txnID, rawTxnBatch(pid, epoch, 2, []byte("committed-0"), []byte("committed-1"))); p.ErrorCode != 0 || p.BaseOffset != 4 {
		t.Fatalf("second transaction: %v at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if c := latest(1); c != 4 {
		t.Fatalf("ListOffsets read_committed with the second transaction open: %d, want 4", c)
	}
	if code := markers(true, 5, 0); code != 0 {
		t.Fatalf("commit marker: %v", kerr.ErrorForCode(code))
	}
	if p := fetch(4, 1); p.LastStableOffset != 7 || len(p.RecordBatches) == 0 || len(p.AbortedTransactions) != 0 {
		t.Fatalf("read_committed fetch of the committed transaction: %d bytes, LSO %d, aborted %+v", len(p.RecordBatches), p.LastStableOffset, p.AbortedTransactions)
	}

	// A read_committed consumer drops the aborted records and the markers.
	consumer := NewClient(t, tg.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []string
	wait.For(t, 30*time.Second, func() error {
		fctx, fcancel := context.WithTimeout(ctx, time.Second)
		defer fcancel()
		consumer.PollFetches(fctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if len(got) < 3 {
			return fmt.Errorf("consumed so far: %q", got)
		}
		return nil
	})
	if want := []string{"plain", "committed-0", "committed-1"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed consumer got %q, want %q", got, want)
	}
}
