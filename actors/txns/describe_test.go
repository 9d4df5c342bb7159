package txns

import (
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribe(t *testing.T) {
	h := newHarness(t, Config{})
	st := h.co.Describe("nope")
	wantCode(t, "unknown id", st.ErrorCode, kerr.TransactionalIDNotFound)

	pid, e := h.init("a")
	st = h.co.Describe("a")
	if st.ErrorCode != 0 || st.State != "Empty" || st.ProducerID != pid || st.ProducerEpoch != e || st.TimeoutMillis != 60000 || st.StartTimestamp != -1 || len(st.Topics) != 0 {
		t.Fatalf("at rest: %+v", st)
	}
	h.mustAdd("a", pid, e, map[string][]int32{"foo": {1, 0}, "bar": {1}})
	st = h.co.Describe("a")
	stored, _ := h.stored("a")
	if st.State != "Ongoing" || st.StartTimestamp != stored.StartTimestamp || st.StartTimestamp <= 0 {
		t.Fatalf("open: %+v", st)
	}
	topics := map[string][]int32{}
	for _, dt := range st.Topics {
		topics[dt.Topic] = dt.Partitions
	}
	if !reflect.DeepEqual(topics, map[string][]int32{"foo": {0, 1}, "bar": {1}}) {
		t.Fatalf("topics %v", topics)
	}
	wantErr(t, "commit", h.end("a", pid, e, true), nil)
	h.waitState("a", stateCompleteCommit)
	st = h.co.Describe("a")
	if st.State != "CompleteCommit" || st.StartTimestamp != -1 || len(st.Topics) != 0 {
		t.Fatalf("completed: %+v", st)
	}

	h.replica("a").ready.Store(false)
	st = h.co.Describe("a")
	wantCode(t, "not ready", st.ErrorCode, kerr.CoordinatorLoadInProgress)
}

func TestList(t *testing.T) {
	h := newHarness(t, Config{})
	pa, ea := h.init("a")
	h.mustAdd("a", pa, ea, map[string][]int32{"foo": {0}})
	pb, _ := h.init("b")
	pc, ec := h.init("c")
	h.mustAdd("c", pc, ec, map[string][]int32{"bar": {0}})
	wantErr(t, "commit c", h.end("c", pc, ec, true), nil)
	h.waitState("c", stateCompleteCommit)
	started, _ := h.stored("a")
	now := time.UnixMilli(started.StartTimestamp + 1000)

	list := func(req *kmsg.ListTransactionsRequest) (map[string]string, []string) {
		t.Helper()
		out, unknown, err := h.co.List(req, now)
		if err != nil {
			t.Fatalf("list %+v: %v", req, err)
		}
		got := map[string]string{}
		for _, ls := range out {
			got[ls.TransactionalID] = ls.TransactionState
			want := map[string]int64{"a": pa, "b": pb, "c": pc}[ls.TransactionalID]
			if ls.ProducerID != want {
				t.Fatalf("%s listed with pid %d, want %d", ls.TransactionalID, ls.ProducerID, want)
			}
		}
		sort.Strings(unknown)
		return got, unknown
	}
	req := func(version int16) *kmsg.ListTransactionsRequest {
		r := kmsg.NewPtrListTransactionsRequest()
		r.Version, r.DurationFilterMillis = version, -1
		return r
	}
	all := map[string]string{"a": "Ongoing", "b": "Empty", "c": "CompleteCommit"}
	check := func(what string, r *kmsg.ListTransactionsRequest, want map[string]string, wantUnknown ...string) {
		t.Helper()
		got, unknown := list(r)
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(unknown, wantUnknown) {
			t.Fatalf("%s: %v unknown %v, want %v unknown %v", what, got, unknown, want, wantUnknown)
		}
	}

	check("no filter", req(2), all)

	r := req(2)
	r.StateFilters = []string{"Ongoing", "CompleteCommit"}
	check("states", r, map[string]string{"a": "Ongoing", "c": "CompleteCommit"})
	r.StateFilters = []string{"Ongoing", "Bogus"}
	check("a state and an unknown one", r, map[string]string{"a": "Ongoing"}, "Bogus")
	// Kafka's listTransactionStates filters whenever state names were
	// given, known or not: none matches an unknown one.
	r.StateFilters = []string{"Bogus"}
	check("only an unknown state", r, map[string]string{}, "Bogus")

	r = req(2)
	r.ProducerIDFilters = []int64{pb, 424242}
	check("producer ids", r, map[string]string{"b": "Empty"})

	r = req(1)
	r.DurationFilterMillis = 500
	check("running longer than 500ms", r, map[string]string{"a": "Ongoing"})
	r.DurationFilterMillis = 5000
	check("running longer than 5s", r, map[string]string{})
	r.Version = 0
	check("v0 has no duration filter", r, all)

	r = req(2)
	pattern := "^[bc]$"
	r.TransactionalIDPattern = &pattern
	check("pattern", r, map[string]string{"b": "Empty", "c": "CompleteCommit"})
	r.Version = 1
	check("v1 has no pattern", r, all)
	bad := "("
	r = req(2)
	r.TransactionalIDPattern = &bad
	if _, _, err := h.co.List(r, now); err != kerr.InvalidRegularExpression {
		t.Fatalf("bad pattern: %v", err)
	}

	// Partitions not led here are not listed.
	h.replica("a").ready.Store(false)
	got, _ := list(req(2))
	if _, ok := got["a"]; ok {
		t.Fatalf("a listed while its partition is not led here: %v", got)
	}
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if got != want.Code {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}
