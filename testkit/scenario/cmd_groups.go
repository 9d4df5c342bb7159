package scenario

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit"
)

// member is a consumer group member of `join`: a franz-go group
// consumer polling on a goroutine of its own, with the partitions its
// rebalance callbacks say it holds.
type member struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	assigned map[string]map[int32]bool
}

func (m *member) close() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		m.cl.Close() // leaves the group
	})
}

func (m *member) update(ps map[string][]int32, add bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for t, parts := range ps {
		if m.assigned[t] == nil {
			m.assigned[t] = map[int32]bool{}
		}
		for _, p := range parts {
			if add {
				m.assigned[t][p] = true
			} else {
				delete(m.assigned[t], p)
			}
		}
	}
}

// holds lists the member's partitions as T/P, sorted.
func (m *member) holds() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for t, ps := range m.assigned {
		for p := range ps {
			out = append(out, t+"/"+strconv.Itoa(int(p)))
		}
	}
	sort.Strings(out)
	return out
}

func memberKey(group, name string) string { return group + "/" + name }

// join G T[,T...] member=NAME
func (r *runner) cmdJoin(st *Step) {
	group, name := st.Args[0], st.KV["member"]
	if name == "" {
		r.bad("join needs member=NAME")
	}
	if r.members[memberKey(group, name)] != nil {
		r.bad("member %s of %s already joined", name, group)
	}
	m := &member{done: make(chan struct{}), assigned: map[string]map[int32]bool{}}
	opts := append(testkit.ClientOpts(strings.Split(r.cluster().Seeds(), ",")...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(strings.Split(st.Args[1], ",")...),
		kgo.ClientID("scenario-"+name),
		kgo.DisableAutoCommit(),
		// A quick heartbeat: the members see a rebalance within a
		// fraction of a second, not the 3 s default.
		kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.SessionTimeout(6*time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { m.update(ps, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { m.update(ps, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { m.update(ps, false) }),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		r.bad("client: %v", err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	r.members[memberKey(group, name)] = m
}

// leave G member=NAME: the member's client closes, which leaves the group.
func (r *runner) cmdLeave(st *Step) {
	k := memberKey(st.Args[0], st.KV["member"])
	m := r.members[k]
	if m == nil {
		r.bad("no member %s of group %s", st.KV["member"], st.Args[0])
	}
	m.close()
	delete(r.members, k)
}

// expect assignment G NAME=T/P,T/P... | NAME=COUNT ... (or member=NAME
// partitions=...): every member named holds exactly those partitions (or
// that many).
func (r *runner) cmdExpectAssignment(st *Step) {
	group := st.Args[1]
	within := r.within(st, defaultWithin)
	kv := st.KV
	if m, ok := kv["member"]; ok {
		// The one-member form: member=NAME partitions=SPEC.
		if len(kv) != 2+btoi(kv["within"] != "") || kv["partitions"] == "" {
			r.bad("want `expect assignment G member=NAME partitions=T/P,...|COUNT`")
		}
		kv = map[string]string{m: kv["partitions"]}
	}
	var names []string
	for k := range kv {
		if k != "within" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		r.bad("want `expect assignment G NAME=T/P,... [NAME=COUNT]`")
	}
	var want []string
	for _, n := range names {
		if r.members[memberKey(group, n)] == nil {
			r.bad("no member %s of group %s", n, group)
		}
		want = append(want, n+"="+kv[n])
	}
	r.eventually(within, strings.Join(want, " "), func() error {
		var got []string
		ok := true
		for _, n := range names {
			holds := r.members[memberKey(group, n)].holds()
			got = append(got, n+"="+strings.Join(holds, ","))
			spec := kv[n]
			if c, err := strconv.Atoi(spec); err == nil {
				ok = ok && len(holds) == c
				continue
			}
			ws := strings.Split(spec, ",")
			sort.Strings(ws)
			ok = ok && slices.Equal(ws, holds)
		}
		if !ok {
			return errors.New(strings.Join(got, " "))
		}
		return nil
	})
}

// commit G T/P offset=N [member=NAME]: through the member's client (in
// its generation), or as an admin commit when no member is named.
func (r *runner) cmdCommit(st *Step) {
	group := st.Args[0]
	topic, p := r.tp(st.Args[1])
	v, ok := st.KV["offset"]
	if !ok {
		r.bad("commit needs offset=N")
	}
	off := r.int(v)
	want := fmt.Sprintf("offset %d committed", off)
	if name, ok := st.KV["member"]; ok {
		m := r.members[memberKey(group, name)]
		if m == nil {
			r.bad("no member %s of group %s", name, group)
		}
		r.eventually(r.within(st, defaultWithin), want, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var cerr error
			m.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: {p: {Epoch: -1, Offset: off}}},
				func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
					cerr = err
					if err == nil {
						for _, t := range resp.Topics {
							for _, rp := range t.Partitions {
								if e := kerr.ErrorForCode(rp.ErrorCode); e != nil {
									cerr = e
								}
							}
						}
					}
				})
			return cerr
		})
		return
	}
	adm := kadm.NewClient(r.cluster().Client())
	r.eventually(r.within(st, defaultWithin), want, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: topic, Partition: p, At: off, LeaderEpoch: -1})
		resp, err := adm.CommitOffsets(ctx, group, offs)
		if err != nil {
			return err
		}
		return resp.Error()
	})
}

// expect committed G T/P = N
func (r *runner) cmdExpectCommitted(st *Step) {
	group := st.Args[1]
	topic, p := r.tp(st.Args[2])
	if st.Args[3] != "=" {
		r.bad("want `expect committed G T/P = N`")
	}
	want := r.int(st.Args[4])
	adm := kadm.NewClient(r.cluster().Client())
	r.eventually(r.within(st, defaultWithin), fmt.Sprintf("group %s's committed offset of %s/%d is %d", group, topic, p, want), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return err
		}
		if err := resp.Error(); err != nil {
			return err
		}
		o, ok := resp.Lookup(topic, p)
		switch {
		case !ok:
			return fmt.Errorf("no committed offset")
		case o.Err != nil:
			return o.Err
		case o.At != want:
			return fmt.Errorf("committed offset %d", o.At)
		}
		return nil
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
