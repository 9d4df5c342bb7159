package actors

import (
	"sync"
	"sync/atomic"
)

// memBudget is the node-wide budget for the bytes of requests read and not
// yet answered (Kafka: queued.max.request.bytes). A connection reserves a
// frame's size when its length arrives and waits, reading nothing more,
// while the budget is spent: backpressure through TCP instead of
// allocation. The memory itself is allocated as the bytes arrive
// (readFrame), so a frame that declares much and sends little costs
// little; the reservation is what keeps the total bounded.
type memBudget struct {
	limit int64

	mu    sync.Mutex
	cond  *sync.Cond
	used  int64
	waits atomic.Int64 // reservations that had to wait
}

func newMemBudget(limit int64) *memBudget {
	m := &memBudget{limit: limit}
	m.cond = sync.NewCond(&m.mu)
	return m
}

// reserve takes n bytes of the budget, waiting until they are free; it
// gives up, reserving nothing, when stop is closed. n is at most limit.
func (m *memBudget) reserve(n int64, stop <-chan struct{}) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used+n <= m.limit {
		m.used += n
		return true
	}
	m.waits.Add(1)
	// A stopped connection must not wait for others' releases: wake
	// every waiter when stop closes, so each looks at its own.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-stop:
			m.mu.Lock()
			m.cond.Broadcast()
			m.mu.Unlock()
		case <-done:
		}
	}()
	for m.used+n > m.limit {
		select {
		case <-stop:
			return false
		default:
		}
		m.cond.Wait()
	}
	m.used += n
	return true
}

// release returns n bytes.
func (m *memBudget) release(n int64) {
	if n == 0 {
		return
	}
	m.mu.Lock()
	m.used -= n
	m.mu.Unlock()
	m.cond.Broadcast()
}

// inUse is the bytes reserved now.
func (m *memBudget) inUse() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}
