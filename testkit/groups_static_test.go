package testkit

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestGroupStaticMembership checks KIP-345 static membership: in a group of
// a dynamic member and a static one (instance id "static-1", 10s session
// timeout), the static member closes without leaving (franz-go sends no
// LeaveGroup for a static member) and the broker keeps it in the group; it
// restarts within the session timeout and gets its old partitions back in
// the same generation, with no rebalance: the dynamic member keeps its
// generation and partitions, is neither revoked nor reassigned, and both
// go on consuming.
func TestGroupStaticMembership(t *testing.T) {
	const partitions = 4
	f := newGroupFixture(t, classicGroupAPIs, partitions)
	ends1 := f.produce("before", 400, 40)

	// Both members balance with the eager range balancer, whose join
	// metadata (topics, generation -1 on a first join) is the same before
	// and after a restart. A cooperative-sticky member's metadata lists the
	// partitions it owns, so its restart sends different bytes; the Java
	// broker does not rebalance for that (only for a change of the selected
	// protocol), but kfake does, and the check must hold on both.
	balance := kgo.Balancers(kgo.RangeBalancer())
	staticOpts := []kgo.Opt{
		kgo.InstanceID("static-1"),
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		balance,
	}
	seen := newSeenRecords()
	// The dynamic member joins first, so it leads the group: a static
	// leader's restart is allowed a rebalance (KIP-814), a follower's is not.
	dyn := f.member("dynamic", seen,
		kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(500*time.Millisecond), balance)
	waitAssignment(t, partitions, 30*time.Second, dyn)
	static := f.member("static-1", seen, staticOpts...)
	waitAssignment(t, partitions, 30*time.Second, dyn, static)
	waitAllSeen(t, seen, zeroOffsets(partitions), ends1, 30*time.Second, "both members")

	adm := f.admin()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	staticMember := func(d kadm.DescribedGroup) (kadm.DescribedGroupMember, bool) {
		for _, m := range d.Members {
			if m.InstanceID != nil && *m.InstanceID == "static-1" {
				return m, true
			}
		}
		return kadm.DescribedGroupMember{}, false
	}
	wait.For(t, 30*time.Second, func() error {
		d, err := describeGroup(ctx, adm, f.group)
		if err != nil {
			return err
		}
		if _, ok := staticMember(d); d.State != "Stable" || len(d.Members) != 2 || !ok {
			return fmt.Errorf("group %s: state %q, %d members, static-1 present %v; want Stable, 2 members with static-1", f.group, d.State, len(d.Members), ok)
		}
		return nil
	})

	_, dynGen := dyn.cl.GroupMetadata()
	_, staticGen := static.cl.GroupMetadata()
	if dynGen != staticGen || dynGen < 1 {
		t.Fatalf("members report generations %d (dynamic) and %d (static-1), want one generation ≥ 1", dynGen, staticGen)
	}
	staticParts, dynParts := static.partitions(), dyn.partitions()
	dyn.mu.Lock()
	dynAssigns, dynRevokes := dyn.assigns, dyn.revokes
	dyn.mu.Unlock()

	// Close without leaving: the broker must still list static-1.
	static.close()
	d, err := describeGroup(ctx, adm, f.group)
	if err != nil {
		t.Fatalf("describe group after static-1 closed: %v", err)
	}
	if _, ok := staticMember(d); !ok || len(d.Members) != 2 {
		t.Fatalf("after static-1 closed (a static member does not leave): state %q, %d members, static-1 present %v; want 2 members with static-1", d.State, len(d.Members), ok)
	}

	// Restart well within the 10s session timeout.
	restarted := f.member("static-1-restarted", seen, staticOpts...)
	wait.For(t, 8*time.Second, func() error {
		if got := restarted.partitions(); !slices.Equal(got, staticParts) {
			return fmt.Errorf("restarted static-1 holds %v, want its old partitions %v (%v)", got, staticParts, dyn)
		}
		return nil
	})
	if _, gen := restarted.cl.GroupMetadata(); gen != staticGen {
		t.Errorf("restarted static-1 is in generation %d, want the unchanged %d", gen, staticGen)
	}

	// Both go on consuming; a rebalance, had there been one, shows below.
	ends2 := f.produce("after", 200, 40)
	waitAllSeen(t, seen, ends1, ends2, 30*time.Second, "after the static restart")
	// Both members commit with the generation they hold; a broker that
	// moved the group to another generation refuses those commits.
	f.waitCommitted(ends2, 30*time.Second)
	for _, p := range staticParts {
		if ends2[p] > ends1[p] && seen.receivedBy("static-1-restarted")[p] == 0 {
			t.Errorf("partition %d: records produced after the restart were not received by the restarted static-1", p)
		}
	}
	if _, gen := dyn.cl.GroupMetadata(); gen != dynGen {
		t.Errorf("dynamic member moved from generation %d to %d: the static restart rebalanced the group", dynGen, gen)
	}
	if _, gen := restarted.cl.GroupMetadata(); gen != staticGen {
		t.Errorf("restarted static-1 moved from generation %d to %d", staticGen, gen)
	}
	dyn.mu.Lock()
	assigns, revokes := dyn.assigns, dyn.revokes
	dyn.mu.Unlock()
	if assigns != dynAssigns || revokes != dynRevokes {
		t.Errorf("dynamic member saw %d assigns and %d revokes during the static restart, want none", assigns-dynAssigns, revokes-dynRevokes)
	}
	if got := dyn.partitions(); !slices.Equal(got, dynParts) {
		t.Errorf("dynamic member holds %v after the static restart, held %v", got, dynParts)
	}
	d, err = describeGroup(ctx, adm, f.group)
	if err != nil {
		t.Fatalf("describe group after the restart: %v", err)
	}
	if m, ok := staticMember(d); d.State != "Stable" || len(d.Members) != 2 || !ok {
		t.Errorf("after the restart: state %q, %d members, static-1 present %v; want Stable, 2 members with static-1", d.State, len(d.Members), ok)
	} else {
		t.Logf("static-1 is member %s after the restart; %v; %v", m.MemberID, dyn, restarted)
	}
}
