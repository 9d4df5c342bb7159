package testkit

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// groupMember is one franz-go consumer group member polling in its own
// goroutine. It records what it receives in a shared seenRecords and keeps
// its current assignment from the OnPartitions* callbacks.
type groupMember struct {
	name string
	cl   *kgo.Client

	mu       sync.Mutex
	assigned map[int32]bool // current assignment of the topic
	assigns  int            // OnPartitionsAssigned calls
	revokes  int            // OnPartitionsRevoked and OnPartitionsLost calls
	lastErr  error          // last fetch error, for diagnostics

	cancel context.CancelFunc
	done   chan struct{}
}

// startGroupMember joins group and consumes topic until closed. Commits are
// franz-go's autocommit (every 250ms, and on revoke) plus a final
// CommitUncommittedOffsets in close.
func startGroupMember(t testing.TB, addr, group, topic, name string, seen *seenRecords, opts ...kgo.Opt) *groupMember {
	t.Helper()
	m := &groupMember{name: name, assigned: map[int32]bool{}, done: make(chan struct{})}
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(250 * time.Millisecond),
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, tps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.assigns++
			for _, p := range tps[topic] {
				m.assigned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, tps map[string][]int32) {
			m.revoked(tps[topic])
			// What the default revoke does: commit what was polled before
			// the partitions go to another member.
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				m.setErr(fmt.Errorf("commit on revoke: %w", err))
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, tps map[string][]int32) {
			m.revoked(tps[topic])
		}),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("%s: kgo client: %v", name, err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() || ctx.Err() != nil {
				return
			}
			fs.EachError(func(tp string, p int32, err error) {
				m.setErr(fmt.Errorf("fetch %s/%d: %w", tp, p, err))
			})
			fs.EachRecord(func(r *kgo.Record) { seen.add(name, r.Partition, r.Offset) })
		}
	}()
	t.Cleanup(m.close)
	return m
}

func (m *groupMember) revoked(ps []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revokes++
	for _, p := range ps {
		delete(m.assigned, p)
	}
}

func (m *groupMember) setErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastErr = err
}

// partitions is the member's current assignment, sorted.
func (m *groupMember) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.assigned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func (m *groupMember) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := make([]int, 0, len(m.assigned))
	for p := range m.assigned {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	return fmt.Sprintf("%s: assigned %v after %d assigns and %d revokes (last error %v)", m.name, ps, m.assigns, m.revokes, m.lastErr)
}

// close stops polling, commits what was polled, and closes the client,
// which leaves the group (unless it is a static member). Idempotent.
func (m *groupMember) close() {
	if m.cl == nil {
		return
	}
	m.cancel()
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
		m.setErr(fmt.Errorf("final commit: %w", err))
	}
	m.cl.Close()
	m.cl = nil
}

// waitAssignment waits until the members' assignments are disjoint, cover
// partitions 0..n-1, and each member has at least one partition.
func waitAssignment(t testing.TB, n int32, within time.Duration, members ...*groupMember) {
	t.Helper()
	wait.For(t, within, func() error {
		owner := map[int32]string{}
		for _, m := range members {
			ps := m.partitions()
			if len(ps) == 0 {
				return fmt.Errorf("%v has no partitions (all: %v)", m, members)
			}
			for _, p := range ps {
				if o, ok := owner[p]; ok {
					return fmt.Errorf("partition %d assigned to both %s and %s (all: %v)", p, o, m.name, members)
				}
				owner[p] = m.name
			}
		}
		for p := int32(0); p < n; p++ {
			if _, ok := owner[p]; !ok {
				return fmt.Errorf("partition %d assigned to nobody (all: %v)", p, members)
			}
		}
		return nil
	})
}

// TestGroupFranzRebalanceAndResume runs franz-go group members on a
// 6-partition topic through a group's life: three members share 3,000
// keyed records, each received at least once, and commit them all (the
// group's committed offsets equal the end offsets); one member leaves and
// the other two take over its partitions and consume what is produced next;
// once every member closed, the group is Empty, and a member started later
// resumes exactly at the committed offsets, never before them.
func TestGroupFranzRebalanceAndResume(t *testing.T) {
	const partitions = 6
	f := newGroupFixture(t, classicGroupAPIs, partitions)

	ends1 := f.produce("first", 3000, 60)
	seen := newSeenRecords()

	a := f.member("member-a", seen)
	b := f.member("member-b", seen)
	c := f.member("member-c", seen)
	waitAssignment(t, partitions, 45*time.Second, a, b, c)
	waitAllSeen(t, seen, zeroOffsets(partitions), ends1, 45*time.Second, "three members")
	f.waitCommitted(ends1, 30*time.Second)

	adm := f.admin()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wait.For(t, 30*time.Second, func() error {
		d, err := describeGroup(ctx, adm, f.group)
		if err != nil {
			return err
		}
		if d.State != "Stable" || len(d.Members) != 3 || d.ProtocolType != "consumer" {
			return fmt.Errorf("group %s with three members polling: state %q, protocol type %q, %d members; want Stable, consumer, 3", f.group, d.State, d.ProtocolType, len(d.Members))
		}
		return nil
	})

	// member-c leaves (Close sends LeaveGroup); its partitions go to a and b.
	cParts := c.partitions()
	c.close()
	wait.For(t, 30*time.Second, func() error {
		d, err := describeGroup(ctx, adm, f.group)
		if err != nil {
			return err
		}
		if len(d.Members) != 2 || d.State != "Stable" {
			return fmt.Errorf("group %s: state %q with %d members, want Stable with 2 after member-c left", f.group, d.State, len(d.Members))
		}
		return nil
	})
	waitAssignment(t, partitions, 30*time.Second, a, b)
	t.Logf("member-c held %v; now %v and %v", cParts, a, b)

	before := map[string]map[int32]int{"member-a": seen.receivedBy("member-a"), "member-b": seen.receivedBy("member-b")}
	ends2 := f.produce("second", 600, 60)
	waitAllSeen(t, seen, ends1, ends2, 45*time.Second, "two members after member-c left")
	for _, p := range cParts {
		got := 0
		for who, was := range before {
			got += seen.receivedBy(who)[p] - was[p]
		}
		if want := int(ends2[p] - ends1[p]); got < want {
			t.Fatalf("partition %d (member-c's): the remaining members received %d new records, want at least %d", p, got, want)
		}
	}
	f.waitCommitted(ends2, 30*time.Second)

	a.close()
	b.close()
	wait.For(t, 30*time.Second, func() error {
		d, err := describeGroup(ctx, adm, f.group)
		if err != nil {
			return err
		}
		if len(d.Members) != 0 || d.State != "Empty" {
			return fmt.Errorf("group %s: state %q with %d members, want Empty once every member left", f.group, d.State, len(d.Members))
		}
		return nil
	})
	committed, err := committedOffsets(ctx, adm, f.group, f.topic)
	if err != nil {
		t.Fatalf("fetch offsets of the empty group: %v", err)
	}
	if !equalOffsets(committed, ends2) {
		t.Fatalf("empty group %s committed %v, want %v", f.group, committed, ends2)
	}

	// A member started later resumes at the committed offsets: the first
	// record it receives on each partition is the committed one.
	ends3 := f.produce("third", 300, 60)
	late := f.member("member-late", seen)
	waitAssignment(t, partitions, 30*time.Second, late)
	waitAllSeen(t, seen, ends2, ends3, 45*time.Second, "the late member")
	first := seen.firstOffsets(late.name)
	for p := int32(0); p < partitions; p++ {
		if ends3[p] == ends2[p] {
			if o, ok := first[p]; ok {
				t.Errorf("partition %d: nothing produced after the commit at %d, but the late member received offset %d", p, ends2[p], o)
			}
			continue
		}
		if o, ok := first[p]; !ok || o != committed[p] {
			t.Errorf("partition %d: the late member's first record is at offset %d (received: %v), want the committed offset %d", p, o, ok, committed[p])
		}
	}
	late.close()
	f.waitCommitted(ends3, 30*time.Second)
}
