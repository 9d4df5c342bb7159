package actors

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// Two franz-go group members share a 4-partition topic, consume all of it,
// commit, and the committed offsets read back through OffsetFetch.
func TestGroupSmokeFranz(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const topic, group, perPartition = "smoke", "smoke-group", 25
	admCl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for p := int32(0); p < 4; p++ {
		for i := 0; i < perPartition; i++ {
			r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, i))}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}

	var mu sync.Mutex
	seen := map[string]bool{}
	owners := map[int32]map[string]bool{} // partition → members that consumed it
	var members []*kgo.Client
	for i := 0; i < 2; i++ {
		name := fmt.Sprintf("m%d", i)
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ClientID(name),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, cl)
		defer cl.Close()
		go func() {
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)] = true
					if owners[r.Partition] == nil {
						owners[r.Partition] = map[string]bool{}
					}
					owners[r.Partition][name] = true
					mu.Unlock()
				})
				_ = cl.CommitUncommittedOffsets(ctx)
			}
		}()
	}
	wait.For(t, 45*time.Second, func() error { // until all records consumed
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < 4*perPartition {
			return fmt.Errorf("%d of %d records seen", len(seen), 4*perPartition)
		}
		return nil
	})
	wait.For(t, 30*time.Second, func() error { // until offsets committed
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return err
		}
		for p := int32(0); p < 4; p++ {
			o, ok := offs.Lookup(topic, p)
			if !ok || o.At != perPartition {
				return fmt.Errorf("partition %d committed %+v", p, o)
			}
		}
		return nil
	})
	wait.For(t, 30*time.Second, func() error { // until both members in a stable group
		ds, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		d := ds[group]
		if d.Err != nil || d.State != "Stable" || len(d.Members) != 2 {
			return fmt.Errorf("group %s: %d members, err %v", d.State, len(d.Members), d.Err)
		}
		return nil
	})
	for _, cl := range members {
		cl.Close()
	}
	wait.For(t, 30*time.Second, func() error { // until group empty after members leave
		ls, err := adm.ListGroups(ctx)
		if err != nil {
			return err
		}
		if g, ok := ls[group]; !ok || g.State != "Empty" {
			return fmt.Errorf("listed %+v", ls)
		}
		return nil
	})
	dr, err := adm.DeleteGroup(ctx, group)
	if err != nil || dr.Err != nil {
		t.Fatalf("delete group: %v %v", err, dr.Err)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, 0); ok && o.At >= 0 {
		t.Fatalf("offset survived the group's deletion: %+v", o)
	}
}
