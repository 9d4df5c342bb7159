package testkit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// The group checks share these helpers: the groupFixture that opens each
// check, names unique per test, a check that the broker advertises the
// group APIs a client needs (so a broker without them fails at once and
// says why, rather than timing out), keyed produce, committed-offset waits,
// and the group's state logged when a check fails.

// groupFixture is the opening every group check against a Target shares:
// a broker that serves the group APIs the check needs (failing at once,
// naming what is missing, when it does not), a fresh topic and a group name
// no other check uses, and the group's state logged should the check fail.
// Its methods are the shared helpers bound to that topic and group.
type groupFixture struct {
	t     testing.TB
	addr  string // the Target's, where clients bootstrap
	topic string
	group string
}

// newGroupFixture starts a Target, requires apis of it, and creates a topic
// of the given partitions for a group of its own.
func newGroupFixture(t testing.TB, apis map[int16]int16, partitions int32) *groupFixture {
	t.Helper()
	tg := StartTarget(t)
	requireAPIs(t, tg.Addr(), apis)
	f := &groupFixture{t: t, addr: tg.Addr(), topic: uniqueName(t, "topic"), group: uniqueName(t, "group")}
	CreateTopic(t, f.addr, f.topic, partitions, nil)
	logGroupOnFailure(t, f.addr, f.group)
	return f
}

// produce writes n records to the topic (produceKeyed: keys key-<i%keys>,
// values <tag>-<i>) and returns the topic's end offsets once all are
// acknowledged.
func (f *groupFixture) produce(tag string, n, keys int) map[int32]int64 {
	f.t.Helper()
	produceKeyed(f.t, f.addr, f.topic, tag, n, keys)
	return endOffsets(f.t, f.addr, f.topic)
}

// member starts a franz-go member of the group consuming the topic
// (startGroupMember).
func (f *groupFixture) member(name string, seen *seenRecords, opts ...kgo.Opt) *groupMember {
	f.t.Helper()
	return startGroupMember(f.t, f.addr, f.group, f.topic, name, seen, opts...)
}

// waitCommitted waits until the group committed exactly want for the
// topic (waitCommitted).
func (f *groupFixture) waitCommitted(want map[int32]int64, within time.Duration) {
	f.t.Helper()
	waitCommitted(f.t, f.addr, f.group, f.topic, want, within)
}

// admin is a kadm client of the target, closed when the test ends.
func (f *groupFixture) admin() *kadm.Client {
	f.t.Helper()
	return kadm.NewClient(NewClient(f.t, f.addr))
}

// classicGroupAPIs are the API keys (and the least version) that every
// classic-protocol consumer group client needs; librdkafka enables its
// balanced consumer only if all of them are advertised. DescribeGroups and
// ListGroups are for the checks' own diagnostics and kadm.
var classicGroupAPIs = map[int16]int16{
	8:  0, // OffsetCommit
	9:  0, // OffsetFetch
	10: 0, // FindCoordinator
	11: 0, // JoinGroup
	12: 0, // Heartbeat
	13: 0, // LeaveGroup
	14: 0, // SyncGroup
	15: 0, // DescribeGroups
	16: 0, // ListGroups
}

// kip848GroupAPIs are what a KIP-848 consumer needs on top of the offset
// APIs: franz-go pins ConsumerGroupHeartbeat v1 (Kafka 4.0) and silently
// falls back to the classic protocol without it.
var kip848GroupAPIs = map[int16]int16{
	8:  0, // OffsetCommit
	9:  0, // OffsetFetch
	10: 0, // FindCoordinator
	68: 1, // ConsumerGroupHeartbeat
	69: 0, // ConsumerGroupDescribe
}

// requireAPIs fails the test, naming every missing API, unless the broker
// at addr advertises each key at least at the given version.
func requireAPIs(t testing.TB, addr string, need map[int16]int16) {
	t.Helper()
	have := advertisedAPIs(t, addr)
	keys := make([]int, 0, len(need))
	for k := range need {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	var missing []string
	for _, k := range keys {
		key, minV := int16(k), need[int16(k)]
		if maxV, ok := have[key]; !ok || maxV < minV {
			name := kmsg.NameForKey(key)
			if ok {
				missing = append(missing, fmt.Sprintf("%s (key %d) v%d+ (advertised up to v%d)", name, key, minV, maxV))
			} else {
				missing = append(missing, fmt.Sprintf("%s (key %d) v%d+ (not advertised)", name, key, minV))
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the broker at %s does not serve the group APIs this check needs: %s", addr, strings.Join(missing, ", "))
	}
}

// advertisedAPIs is the broker's ApiVersions answer: the newest version
// of each API key it advertises.
func advertisedAPIs(t testing.TB, addr string) map[int16]int16 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := NewClient(t, addr)
	defer cl.Close()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	have := map[int16]int16{}
	for _, k := range resp.ApiKeys {
		have[k.ApiKey] = k.MaxVersion
	}
	return have
}

// uniqueName makes a topic or group name that no other check (or earlier
// run against a reused broker) shares.
func uniqueName(t testing.TB, what string) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("%s-%s-%d", strings.ToLower(name), what, time.Now().UnixNano()%1_000_000)
}

// produceKeyed writes n records with keys key-<i%keys> and values
// <tag>-<i>, synchronously, and returns nothing until all are acknowledged.
func produceKeyed(t testing.TB, addr, topic, tag string, n, keys int) {
	t.Helper()
	cl := NewClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{
			Key:   fmt.Appendf(nil, "key-%d", i%keys),
			Value: fmt.Appendf(nil, "%s-%d", tag, i),
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records to %s: %v", n, topic, err)
	}
}

// committedOffsets is the group's committed offset per partition of topic
// (partitions without a commit are absent).
func committedOffsets(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	if err := fetched.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// waitCommitted waits until the group has committed exactly want for every
// partition of topic (clients commit asynchronously and on close).
func waitCommitted(t testing.TB, addr, group, topic string, want map[int32]int64, within time.Duration) {
	t.Helper()
	adm := kadm.NewClient(NewClient(t, addr))
	defer adm.Close()
	wait.For(t, within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := committedOffsets(ctx, adm, group, topic)
		if err != nil {
			return fmt.Errorf("fetch offsets of group %s: %w", group, err)
		}
		if !equalOffsets(got, want) {
			return fmt.Errorf("group %s committed %v, want the end offsets %v", group, got, want)
		}
		return nil
	})
}

func equalOffsets(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for p, o := range a {
		if bo, ok := b[p]; !ok || bo != o {
			return false
		}
	}
	return true
}

// describeGroup describes one classic group.
func describeGroup(ctx context.Context, adm *kadm.Client, group string) (kadm.DescribedGroup, error) {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return kadm.DescribedGroup{}, err
	}
	d, ok := ds[group]
	if !ok {
		return kadm.DescribedGroup{}, fmt.Errorf("group %s missing from the DescribeGroups answer", group)
	}
	return d, d.Err
}

// groupDiagnostics renders the group's state, members, assignments and
// committed offsets for a failure message (addr: one host:port, or several
// joined by commas).
func groupDiagnostics(addr, group string) string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		return fmt.Sprintf("group %s: no client: %v", group, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b strings.Builder
	d, err := describeGroup(ctx, adm, group)
	if err != nil {
		fmt.Fprintf(&b, "DescribeGroups %s: %v\n", group, err)
	} else {
		fmt.Fprintf(&b, "group %s: state %q, protocol type %q, protocol %q, %d members\n", group, d.State, d.ProtocolType, d.Protocol, len(d.Members))
		for _, m := range d.Members {
			inst := "-"
			if m.InstanceID != nil {
				inst = *m.InstanceID
			}
			assigned := "?"
			if c, ok := m.Assigned.AsConsumer(); ok {
				var parts []string
				for _, tp := range c.Topics {
					parts = append(parts, fmt.Sprintf("%s%v", tp.Topic, tp.Partitions))
				}
				assigned = strings.Join(parts, " ")
			}
			fmt.Fprintf(&b, "  member %s instance %s client %s host %s assigned %s\n", m.MemberID, inst, m.ClientID, m.ClientHost, assigned)
		}
	}
	if fetched, err := adm.FetchOffsets(ctx, group); err != nil {
		fmt.Fprintf(&b, "OffsetFetch %s: %v\n", group, err)
	} else {
		var lines []string
		fetched.Each(func(o kadm.OffsetResponse) {
			lines = append(lines, fmt.Sprintf("  committed %s/%d = %d (err %v)", o.Topic, o.Partition, o.At, o.Err))
		})
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, "\n"))
	}
	return b.String()
}

// logGroupOnFailure logs the group's state when the test fails. Cleanups
// run last-in first-out, so this runs while the target (started earlier)
// still serves.
func logGroupOnFailure(t testing.TB, addr, group string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("group state at failure:\n%s", groupDiagnostics(addr, group))
		}
	})
}

// seenRecords tracks which offsets of a topic some consumer received, and
// which consumer received them.
type seenRecords struct {
	mu    sync.Mutex
	seen  map[int32]map[int64]int    // partition → offset → times received
	by    map[string]map[int32]int   // consumer → partition → records received
	first map[string]map[int32]int64 // consumer → partition → first offset received
}

func newSeenRecords() *seenRecords {
	return &seenRecords{
		seen:  map[int32]map[int64]int{},
		by:    map[string]map[int32]int{},
		first: map[string]map[int32]int64{},
	}
}

func (s *seenRecords) add(who string, partition int32, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[partition] == nil {
		s.seen[partition] = map[int64]int{}
	}
	s.seen[partition][offset]++
	if s.by[who] == nil {
		s.by[who] = map[int32]int{}
		s.first[who] = map[int32]int64{}
	}
	s.by[who][partition]++
	if _, ok := s.first[who][partition]; !ok {
		s.first[who][partition] = offset
	}
}

// missing says which offsets in [from, to) per partition nobody received
// yet, as a short summary; "" means none.
func (s *seenRecords) missing(from, to map[int32]int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for p := int32(0); p < int32(len(to)); p++ {
		n, firstMissing := 0, int64(-1)
		for o := from[p]; o < to[p]; o++ {
			if s.seen[p][o] == 0 {
				if firstMissing < 0 {
					firstMissing = o
				}
				n++
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("partition %d: %d of [%d,%d) missing, first %d", p, n, from[p], to[p], firstMissing))
		}
	}
	return strings.Join(parts, "; ")
}

// receivedBy is how many records each consumer received per partition.
func (s *seenRecords) receivedBy(who string) map[int32]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32]int{}
	for p, n := range s.by[who] {
		out[p] = n
	}
	return out
}

// firstOffsets is the first offset the consumer received per partition.
func (s *seenRecords) firstOffsets(who string) map[int32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32]int64{}
	for p, o := range s.first[who] {
		out[p] = o
	}
	return out
}

// waitAllSeen waits until every offset in [from, to) was received by some
// consumer.
func waitAllSeen(t testing.TB, s *seenRecords, from, to map[int32]int64, within time.Duration, what string) {
	t.Helper()
	wait.For(t, within, func() error {
		if m := s.missing(from, to); m != "" {
			return fmt.Errorf("%s: not consumed yet: %s", what, m)
		}
		return nil
	})
}

func zeroOffsets(partitions int32) map[int32]int64 {
	out := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		out[p] = 0
	}
	return out
}
