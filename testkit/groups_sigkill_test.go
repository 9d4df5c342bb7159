package testkit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TestGroupOffsetsSurviveSIGKILL commits offsets for a group from
// concurrent committers while the broker binary is SIGKILLed, twice, and
// restarted on the same data dir. After each restart every partition's
// committed offset is at least the last one whose commit was acknowledged
// (never lost, never moved backwards) and at most the last one attempted.
func TestGroupOffsetsSurviveSIGKILL(t *testing.T) {
	SkipUnlessChronik(t, "chronik-specific: kfake keeps nothing across a kill")
	p := StartProcess(t, t.TempDir())
	const (
		topic      = "group-sigkill"
		group      = "group-sigkill-g"
		partitions = 4
	)
	CreateTopic(t, p.Addr(), topic, partitions, nil)

	var (
		mu        sync.Mutex
		acked     = map[int32]int64{} // last acknowledged commit
		attempted = map[int32]int64{} // last commit sent
	)
	var next atomic.Int64
	for round := 1; round <= 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var commits atomic.Int64
		for part := int32(0); part < partitions; part++ {
			adm := kadm.NewClient(NewClient(t, p.Addr()))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					off := next.Add(1) // grows across partitions and rounds
					mu.Lock()
					attempted[part] = off
					mu.Unlock()
					var os kadm.Offsets
					os.AddOffset(topic, part, off, -1)
					cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
					resp, err := adm.CommitOffsets(cctx, group, os)
					ccancel()
					if err != nil || resp.Error() != nil {
						continue // unacknowledged: may or may not have landed
					}
					mu.Lock()
					acked[part] = off
					mu.Unlock()
					commits.Add(1)
				}
			}()
		}
		want := commits.Load() + 200
		wait.For(t, time.Minute, func() error {
			if n := commits.Load(); n < want {
				return fmt.Errorf("round %d: %d commits acknowledged, waiting for %d", round, n, want)
			}
			return nil
		})
		p.Kill()
		cancel()
		wg.Wait()
		p.Restart()

		adm := kadm.NewClient(NewClient(t, p.Addr()))
		var fetched kadm.OffsetResponses
		wait.For(t, time.Minute, func() error {
			fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer fcancel()
			var err error
			fetched, err = adm.FetchOffsets(fctx, group)
			if err == nil {
				err = fetched.Error()
			}
			return err
		})
		mu.Lock()
		for part := int32(0); part < partitions; part++ {
			got, ok := fetched.Lookup(topic, part)
			if !ok {
				t.Fatalf("round %d: partition %d: no committed offset after restart (acknowledged %d)", round, part, acked[part])
			}
			if got.At < acked[part] || got.At > attempted[part] {
				t.Fatalf("round %d: partition %d: committed offset %d after restart, want between the last acknowledged %d and the last attempted %d",
					round, part, got.At, acked[part], attempted[part])
			}
			// What survived is now the floor: it must never go back.
			acked[part] = got.At
		}
		mu.Unlock()
	}
}
