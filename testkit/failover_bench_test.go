package testkit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// BenchmarkFailover measures, on a cluster of three chronik-actor
// processes with default settings, how long a partition is unwritable when
// its leader's node is SIGKILLed: from the kill to the acknowledgement of
// the first record whose produce began after it. One idempotent acks=all
// franz-go producer, seeded with all three nodes, writes one record at a
// time to an RF 3 topic of one partition. Each b.N iteration kills the
// partition's leader failoverKills times; after each kill the node is
// restarted and the next kill waits until the partition's leader counts
// it in sync again.
//
// Alongside: "election", from the kill until a survivor's Metadata names
// a new leader (polled every 5 ms on both survivors, the earlier counts;
// a node names itself once its replica is LeaderReady), and "both
// survivors", until both do.
//
// fast-metadata is a producer that refreshes metadata as often as every
// 10 ms and backs off 10 ms between retries; kgo-defaults is franz-go's
// defaults (metadata at most every 5 s, its own backoff). Run it with
//
//	go test -run XXX -bench BenchmarkFailover -benchtime 1x ./testkit/
func BenchmarkFailover(b *testing.B) {
	b.Run("fast-metadata", func(b *testing.B) {
		failover(b,
			kgo.MetadataMinAge(10*time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	})
	b.Run("kgo-defaults", func(b *testing.B) { failover(b) })
}

func failover(b *testing.B, opts ...kgo.Opt) {
	SkipUnlessChronik(b, "a cluster of chronik-actor processes")
	const (
		topic         = "failover"
		failoverKills = 10
	)
	logLoad(b, "at start")
	procs := StartCluster(b, 3)
	seeds := Seeds(procs)
	cl := NewClient(b, seeds)
	adm := kadm.NewClient(cl)
	createClusterTopic(b, adm, topic, 1, 3)

	prod := NewClient(b, seeds, append([]kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0),
	}, opts...)...)
	probe := &ackProbe{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			start := time.Now()
			err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "record %d", i)}).FirstErr()
			probe.observe(start, time.Now(), err)
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	wait.For(b, time.Minute, func() error {
		if n := probe.ackCount(); n < 100 {
			return fmt.Errorf("%d records acknowledged before the first kill, want 100", n)
		}
		return nil
	})

	var failovers, elections, learned []time.Duration
	var perKill []string
	b.ResetTimer()
	for range b.N {
		for k := range failoverKills {
			leader := selfLeader(b, procs, topic, 0)
			victim := procs[leader-1]
			var survivors []int32
			for id := int32(1); id <= 3; id++ {
				if id != leader {
					survivors = append(survivors, id)
				}
			}
			killAt := time.Now()
			acked := probe.arm(killAt)
			victim.Kill()
			elected := watchNewLeader(cl, topic, leader, survivors, killAt)

			var firstAck time.Time
			select {
			case firstAck = <-acked:
			case <-time.After(time.Minute):
				b.Fatalf("kill %d: no record acknowledged within a minute of SIGKILLing node %d", k+1, leader)
			}
			ev := <-elected
			failover := firstAck.Sub(killAt)
			failovers = append(failovers, failover)
			if ev.first > 0 {
				elections = append(elections, ev.first)
				learned = append(learned, ev.all)
			}
			perKill = append(perKill, fmt.Sprintf("kill %d: node %d, first ack %v, node %d named %v, by both %v",
				k+1, leader, failover.Round(time.Millisecond), ev.leader, ev.first.Round(time.Millisecond), ev.all.Round(time.Millisecond)))
			if ev.leader == leader || ev.leader <= 0 {
				b.Fatalf("kill %d: no survivor named a new leader within 30 s", k+1)
			}

			victim.Restart()
			wait.For(b, 2*time.Minute, func() error {
				// Under load the follower may be an entry or two behind.
				return inSyncOnLeaders(procs, topic, leader, 16, false)
			})
			// Let the load run steadily again before the next kill.
			n := probe.ackCount()
			wait.For(b, time.Minute, func() error {
				if probe.ackCount() < n+50 {
					return fmt.Errorf("load not flowing again after node %d's restart", leader)
				}
				return nil
			})
		}
	}
	b.StopTimer()
	// One line: go test shows only a benchmark's first log lines.
	b.Logf("%s; %d produce errors", strings.Join(perKill, "; "), probe.errCount())
	med, lo, hi := durStats(failovers)
	b.ReportMetric(ms(med), "ms/failover-median")
	b.ReportMetric(ms(lo), "ms/failover-min")
	b.ReportMetric(ms(hi), "ms/failover-max")
	med, lo, hi = durStats(elections)
	b.ReportMetric(ms(med), "ms/election-median")
	b.ReportMetric(ms(lo), "ms/election-min")
	b.ReportMetric(ms(hi), "ms/election-max")
	med, _, _ = durStats(learned)
	b.ReportMetric(ms(med), "ms/both-survivors-median")
	if n := probe.errCount(); n > 0 {
		b.Logf("%d produce errors (first: %v)", n, probe.firstErr())
	}
	logLoad(b, "at end")
}

// selfLeader is the node that leads partition of topic by its own
// account (its /v1/cluster has the group's progress), waiting for one.
func selfLeader(b testing.TB, procs []*Process, topic string, partition int32) int32 {
	b.Helper()
	var leader int32
	wait.For(b, time.Minute, func() error {
		for i, p := range procs {
			if !p.running() {
				continue
			}
			v, err := nodeView(p)
			if err != nil {
				continue
			}
			if tv := topicOf(v, topic); tv != nil && int(partition) < len(tv.Partitions) && tv.Partitions[partition].Progress != nil {
				leader = int32(i + 1)
				return nil
			}
		}
		return fmt.Errorf("no node leads partition %d of %s by its own account", partition, topic)
	})
	return leader
}

// ackProbe watches the producer's acknowledgements: once armed and given
// a time, it hands over the end of the first successful produce that began
// after that time.
type ackProbe struct {
	mu     sync.Mutex
	acks   int64
	errs   int
	first  error
	after  time.Time // set by arm
	notify chan time.Time
}

func (p *ackProbe) observe(start, end time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.errs++; p.first == nil {
			p.first = err
		}
		return
	}
	p.acks++
	if p.notify != nil && !p.after.IsZero() && start.After(p.after) {
		p.notify <- end
		p.notify, p.after = nil, time.Time{}
	}
}

// arm asks for the end of the first successful produce begun after t.
func (p *ackProbe) arm(t time.Time) <-chan time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notify = make(chan time.Time, 1)
	p.after = t
	return p.notify
}

func (p *ackProbe) ackCount() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acks
}

func (p *ackProbe) errCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errs
}

func (p *ackProbe) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

type electionSeen struct {
	leader int32         // the new leader named first
	first  time.Duration // the kill to the first survivor naming it; 0 if none did within the wait
	all    time.Duration // the kill to every survivor naming a new leader
}

// watchNewLeader polls each survivor's Metadata every 5 ms until it names
// a leader of partition 0 other than old, for at most 30 s.
func watchNewLeader(cl *kgo.Client, topic string, old int32, survivors []int32, killAt time.Time) <-chan electionSeen {
	out := make(chan electionSeen, 1)
	type seen struct {
		leader int32
		at     time.Duration
	}
	ch := make(chan seen, len(survivors))
	for _, id := range survivors {
		go func() {
			deadline := killAt.Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if l := metadataLeader(cl, id, topic); l > 0 && l != old {
					ch <- seen{l, time.Since(killAt)}
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			ch <- seen{-1, 0}
		}()
	}
	go func() {
		var ev electionSeen
		for range survivors {
			s := <-ch
			if s.leader < 0 {
				ev.all = 0
				continue
			}
			if ev.first == 0 || s.at < ev.first {
				ev.first, ev.leader = s.at, s.leader
			}
			ev.all = max(ev.all, s.at)
		}
		out <- ev
	}()
	return out
}

// metadataLeader is partition 0's leader as node id's Metadata answers,
// -1 when it names none or does not answer within a second.
func metadataLeader(cl *kgo.Client, id int32, topic string) int32 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	raw, err := cl.Broker(int(id)).Request(ctx, req)
	if err != nil {
		return -1
	}
	resp := raw.(*kmsg.MetadataResponse)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition == 0 && p.ErrorCode == 0 {
				return p.Leader
			}
		}
	}
	return -1
}
