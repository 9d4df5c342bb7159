package txns

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

func TestStoreReadsKafkasRecords(t *testing.T) {
	s := newTxnStore()
	a := &txn{id: "a", pid: 7, epoch: 2, timeoutMs: 1000, state: stateOngoing, start: 5, updated: 6}
	a.add("foo", 1)
	a.add("foo", 0)
	b := &txn{id: "b", pid: 8, state: stateEmpty, start: -1}
	tomb := kmsg.TxnMetadataKey{TransactionalID: "b"}
	later := []byte{0, 9, 'x'} // a key version of a later Kafka: skipped, not counted
	s.ObserveBatch(protocol.BuildBatch([]protocol.Record{metadataRecord("a", a), metadataRecord("b", b)}, 1))
	if !s.unfinished() {
		t.Fatal("an Ongoing txn is unfinished")
	}
	s.ObserveBatch(protocol.BuildBatch([]protocol.Record{{Key: tomb.AppendTo(nil)}, {Key: later, Value: []byte{1}}, {Key: []byte{0}, Value: []byte{1}}}, 2))
	if ids := s.ids(); len(ids) != 1 || ids[0] != "a" {
		t.Fatalf("ids %v after b's tombstone", ids)
	}
	if s.skipped != 1 {
		t.Fatalf("skipped %d, want 1 (the short key)", s.skipped)
	}
	v, _ := s.get("a")
	got := txnFromRecord("a", v)
	if got.pid != 7 || got.epoch != 2 || got.timeoutMs != 1000 || got.state != stateOngoing || got.start != 5 || got.updated != 6 ||
		!got.has("foo", 0) || !got.has("foo", 1) || got.lastEpoch != -1 {
		t.Fatalf("read back %+v", got)
	}
	s.ObserveBatch([]byte("not a batch"))
	if s.skipped != 2 {
		t.Fatalf("skipped %d after a bad batch", s.skipped)
	}
	a.state = stateCompleteCommit
	s.ObserveBatch(protocol.BuildBatch([]protocol.Record{metadataRecord("a", a)}, 3))
	if s.unfinished() {
		t.Fatal("unfinished with only a completed txn")
	}
	s.Reset()
	if len(s.all()) != 0 || s.skipped != 0 {
		t.Fatal("Reset kept state")
	}
}
