package scenario

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// producer is an idempotent producer of init-producer: its id and epoch,
// and the next sequence per partition.
type producer struct {
	id    int64
	epoch int16
	next  map[string]int32
}

// adminClient is a franz-go admin client of the cluster, closed at the
// run's end.
func (r *runner) adminClient() *kadm.Client {
	return kadm.NewClient(r.cluster().Client())
}

// create-topic T [partitions=N] [rf=N]
func (r *runner) cmdCreateTopic(st *Step) {
	parts, rf := int32(1), int16(-1)
	if v, ok := st.KV["partitions"]; ok {
		parts = int32(r.int(v))
	}
	if v, ok := st.KV["rf"]; ok {
		rf = int16(r.int(v))
	}
	testkit.CreateClusterTopic(r.tb, r.cluster(), st.Args[0], parts, rf)
}

// delete-topic T [-> ok | -> error CODE]
func (r *runner) cmdDeleteTopic(st *Step) {
	wantErr := r.wantError(st)
	adm := r.adminClient()
	var last error
	r.eventually(r.within(st, defaultWithin), "delete-topic "+r.outcome(wantErr), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := adm.DeleteTopic(ctx, st.Args[0])
		if err == nil {
			err = resp.Err
		}
		last = err
		// Retried while the controller is being elected, unless that is
		// the error the step expects.
		if err != nil && (kerr.IsRetriable(err) || errors.Is(err, kerr.NotController) || errors.Is(err, context.DeadlineExceeded)) && !matches(err, wantErr) {
			return err
		}
		return nil
	})
	r.check(wantErr, last, "")
}

// wantError is the step's "-> error CODE", "" for "-> ok" or none.
func (r *runner) wantError(st *Step) string {
	if !st.Arrow || (len(st.Want) >= 1 && st.Want[0] == "ok") {
		return ""
	}
	if len(st.Want) != 2 || st.Want[0] != "error" {
		r.bad("want `-> ok` or `-> error CODE`")
	}
	return st.Want[1]
}

func (r *runner) outcome(wantErr string) string {
	if wantErr == "" {
		return "ok"
	}
	return "error " + wantErr
}

// matches tells whether err is the error a script names, or one of
// them (A|B); Kafka's two names of code 6 both match it.
func matches(err error, names string) bool {
	if err == nil || names == "" {
		return false
	}
	got := errName(err)
	for _, name := range strings.Split(names, "|") {
		if name == "NOT_LEADER_FOR_PARTITION" {
			name = "NOT_LEADER_OR_FOLLOWER"
		}
		if got == name {
			return true
		}
	}
	return false
}

// check fails the step unless err is what it wants; extra describes a
// success.
func (r *runner) check(wantErr string, err error, extra string) {
	switch {
	case wantErr == "" && err != nil:
		r.fail("ok", "error %s", errName(err))
	case wantErr != "" && err == nil:
		r.fail("error "+wantErr, "ok%s", extra)
	case wantErr != "" && !matches(err, wantErr):
		r.fail("error "+wantErr, "error %s", errName(err))
	}
}

// init-producer NAME: an idempotent producer id and epoch from any node.
func (r *runner) cmdInitProducer(st *Step) {
	var pr *producer
	r.eventually(defaultWithin, "a producer id", func() error {
		var errs []error
		for _, id := range r.cluster().Nodes() {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionTimeoutMillis = 60000
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			resp, err := r.request(ctx, id, req)
			cancel()
			if err == nil {
				err = kerr.ErrorForCode(resp.(*kmsg.InitProducerIDResponse).ErrorCode)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("node %d: %v", id, err))
				continue
			}
			ir := resp.(*kmsg.InitProducerIDResponse)
			pr = &producer{id: ir.ProducerID, epoch: ir.ProducerEpoch, next: map[string]int32{}}
			return nil
		}
		return errors.Join(errs...)
	})
	r.prods[st.Args[0]] = pr
	r.logf("%s:%d: producer %s has id %d epoch %d", r.script.Name, st.Line, st.Args[0], pr.id, pr.epoch)
}

// produce T/P V... [key=K] [acks=all|1|0] [on=NODE] [timeout=D]
// [producer=NAME [seq=N]] [within=D] [-> ok [offset=N] | -> error CODE]
func (r *runner) cmdProduce(st *Step) {
	topic, p := r.tp(st.Args[0])
	values := st.Args[1:]
	wantErr := r.wantError(st)
	wantOffset := int64(-1)
	if wantErr == "" && len(st.Want) > 1 {
		v, ok := strings.CutPrefix(st.Want[1], "offset=")
		if !ok || len(st.Want) > 2 {
			r.bad("want `-> ok [offset=N]`")
		}
		wantOffset = r.int(v)
	}
	acks := int16(-1)
	switch st.KV["acks"] {
	case "", "all", "-1":
	case "1":
		acks = 1
	case "0":
		acks = 0
	default:
		r.bad("acks=%s: all, 1 or 0", st.KV["acks"])
	}
	timeout := 5 * time.Second
	if v, ok := st.KV["timeout"]; ok {
		timeout = r.duration(v)
	}
	var key []byte
	if v, ok := st.KV["key"]; ok {
		key = []byte(v)
	}
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	var pr *producer
	if name, ok := st.KV["producer"]; ok {
		if pr = r.prods[name]; pr == nil {
			r.bad("no producer %q: `init-producer %s` first", name, name)
		}
		pid, epoch, seq = pr.id, pr.epoch, pr.next[st.Args[0]]
		if v, ok := st.KV["seq"]; ok {
			seq = int32(r.int(v))
		}
	} else if _, ok := st.KV["seq"]; ok {
		r.bad("seq= needs producer=")
	}
	on := int32(0)
	if v, ok := st.KV["on"]; ok {
		on = r.node(v)
	}
	b := batch(pid, epoch, seq, key, values)
	// The answer that decides the step: the first one that is not worth
	// retrying, or the last one when the step's time is up.
	var (
		answered bool
		id       int32
		off      int64
		perr     error
	)
	werr := wait.Until(context.Background(), r.within(st, defaultWithin), func() error {
		id = on
		if id == 0 {
			l, err := r.confirmedLeader(topic, p)
			if err != nil {
				return fmt.Errorf("no leader to produce to: %v", err)
			}
			id = l
		}
		off, perr = r.produceOnce(id, topic, p, acks, timeout, b)
		answered = true
		// A retry is safe when nothing was written, or for an idempotent
		// producer (the retry of a written batch gets its first offset).
		retry := notWritten(perr) || (pr != nil && perr != nil && (errors.Is(perr, kerr.RequestTimedOut) || !isKafkaErr(perr)))
		if perr != nil && retry && !matches(perr, wantErr) && (wantErr == "" || on == 0) {
			r.logf("%s:%d: node %d answered %s; retrying", r.script.Name, st.Line, id, errName(perr))
			return perr
		}
		return nil
	})
	if !answered {
		r.fail(r.outcome(wantErr), "%v", werr)
	}
	r.check(wantErr, perr, fmt.Sprintf(" (offset %d, from node %d)", off, id))
	if perr != nil {
		r.logf("%s:%d: error %s from node %d, as expected", r.script.Name, st.Line, errName(perr), id)
		return
	}
	if wantOffset >= 0 && off != wantOffset {
		r.fail(fmt.Sprintf("ok offset=%d", wantOffset), "ok offset=%d (from node %d)", off, id)
	}
	if pr != nil {
		pr.next[st.Args[0]] = max(pr.next[st.Args[0]], seq+int32(len(values)))
	}
	r.logf("%s:%d: ok offset=%d from node %d", r.script.Name, st.Line, off, id)
}

func isKafkaErr(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke)
}

// produce-many T/P count=N [size=BYTES] [batch=N]: N records of about
// BYTES each, acks=all, to the leader, retried only where nothing was
// written; every one must be acknowledged.
func (r *runner) cmdProduceMany(st *Step) {
	topic, p := r.tp(st.Args[0])
	count, size, per := 0, 100, 100
	if v, ok := st.KV["count"]; ok {
		count = int(r.int(v))
	} else {
		r.bad("produce-many needs count=")
	}
	if v, ok := st.KV["size"]; ok {
		size = r.size(v)
	}
	if v, ok := st.KV["batch"]; ok {
		per = int(r.int(v))
	}
	for done := 0; done < count; {
		n := min(per, count-done)
		vals := make([]string, n)
		for i := range vals {
			v := fmt.Sprintf("m%07d-", done+i)
			vals[i] = v + strings.Repeat("x", max(0, size-len(v)))
		}
		b := batch(-1, -1, -1, nil, vals)
		var last error
		r.eventually(defaultWithin, fmt.Sprintf("records %d-%d acknowledged", done, done+n-1), func() error {
			l, err := r.confirmedLeader(topic, p)
			if err == nil {
				_, err = r.produceOnce(l, topic, p, -1, 5*time.Second, b)
			}
			if err != nil && !notWritten(err) && isKafkaErr(err) {
				last = err
				return nil
			}
			return err
		})
		if last != nil {
			r.fail("every record acknowledged", "records %d-%d: %s", done, done+n-1, errName(last))
		}
		done += n
	}
}

// consume T/P [from=N] [on=NODE] [within=D] -> V... | -> count=N | -> nothing
func (r *runner) cmdConsume(st *Step) {
	topic, p := r.tp(st.Args[0])
	if !st.Arrow {
		r.bad("consume needs `-> V...`, `-> count=N` or `-> nothing`")
	}
	from := int64(0)
	if v, ok := st.KV["from"]; ok {
		from = r.int(v)
	}
	want := st.Want
	wantCount := -1
	if len(want) == 1 && want[0] == "nothing" {
		want = nil
	} else if len(want) == 1 && strings.HasPrefix(want[0], "count=") {
		wantCount = int(r.int(strings.TrimPrefix(want[0], "count=")))
	}
	wantText := strings.Join(st.Want, " ")
	r.eventually(r.within(st, defaultWithin), wantText, func() error {
		id := int32(0)
		if v, ok := st.KV["on"]; ok {
			id = r.node(v)
		} else {
			l, err := r.confirmedLeader(topic, p)
			if err != nil {
				return err
			}
			id = l
		}
		recs, hwm, err := r.fetch(id, topic, p, from)
		if err != nil {
			return fmt.Errorf("node %d: %s", id, errName(err))
		}
		if wantCount >= 0 {
			if len(recs) != wantCount {
				return fmt.Errorf("%d records (node %d, high watermark %d)", len(recs), id, hwm)
			}
			return nil
		}
		got := make([]string, len(recs))
		for i, rec := range recs {
			got[i] = string(rec.value)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			if len(got) == 0 {
				return fmt.Errorf("nothing (node %d, high watermark %d)", id, hwm)
			}
			return fmt.Errorf("%s (node %d, high watermark %d)", strings.Join(got, " "), id, hwm)
		}
		return nil
	})
}

// expect topic T exists|absent
func (r *runner) cmdExpectTopic(st *Step) {
	name, state := st.Args[1], st.Args[2]
	if state != "exists" && state != "absent" {
		r.bad("want `expect topic T exists|absent`")
	}
	adm := r.adminClient()
	r.eventually(r.within(st, defaultWithin), "topic "+name+" "+state, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		md, err := adm.Metadata(ctx, name)
		if err != nil {
			return err
		}
		td, ok := md.Topics[name]
		exists := ok && td.Err == nil
		switch {
		case state == "exists" && !exists:
			return fmt.Errorf("topic %s is not in the metadata (%v)", name, td.Err)
		case state == "absent" && exists:
			return fmt.Errorf("topic %s still exists with %d partitions", name, len(td.Partitions))
		}
		return nil
	})
}

// load is a background producer: one record at a time to a partition
// through a client that follows its leader, counting what is
// acknowledged and what fails.
type load struct {
	cancel       context.CancelFunc
	done         chan struct{}
	acked, fails atomic.Int64
	once         sync.Once
}

func (l *load) stop() {
	l.once.Do(func() {
		l.cancel()
		<-l.done
	})
}

// load start NAME T/P | load stop NAME
func (r *runner) cmdLoad(st *Step) {
	switch {
	case st.Args[0] == "start" && len(st.Args) == 3:
		name := st.Args[1]
		if r.loads[name] != nil {
			r.bad("load %s is already running", name)
		}
		topic, p := r.tp(st.Args[2])
		cl, err := kgo.NewClient(append(testkit.ClientOpts(strings.Split(r.cluster().Seeds(), ",")...),
			kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.UnknownTopicRetries(-1))...)
		if err != nil {
			r.bad("client: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		l := &load{cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(l.done)
			defer cl.Close()
			for i := 0; ctx.Err() == nil; i++ {
				rec := &kgo.Record{Topic: topic, Partition: p, Value: []byte("load-" + strconv.Itoa(i))}
				if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
					l.fails.Add(1)
					continue
				}
				l.acked.Add(1)
			}
		}()
		r.loads[name] = l
	case st.Args[0] == "stop" && len(st.Args) == 2:
		l := r.loads[st.Args[1]]
		if l == nil {
			r.bad("no load %q running", st.Args[1])
		}
		stopped := make(chan struct{})
		go func() { l.stop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			r.fail("the load to stop", "still producing 30s after it was told to stop")
		}
		delete(r.loads, st.Args[1])
		r.logf("%s:%d: load %s: %d acknowledged, %d failed", r.script.Name, st.Line, st.Args[1], l.acked.Load(), l.fails.Load())
		if l.acked.Load() == 0 {
			r.fail("some of the load's records acknowledged", "none (%d failed)", l.fails.Load())
		}
	default:
		r.bad("want `load start NAME T/P` or `load stop NAME`")
	}
}
