package cluster

import (
	"sync"
	"time"
)

// delayLine holds the items a NetFault delays for one peer and queues
// them once due, in the order they came: a later item with a shorter
// delay waits behind an earlier one, as on one TCP connection. While it
// holds anything, every item for that peer goes through it, so that
// lifting a delay does not let new items overtake held ones.
type delayLine struct {
	p *peer

	mu    sync.Mutex
	held  []heldItem
	timer *time.Timer // armed for held[0] while held is not empty
}

type heldItem struct {
	it  item
	due time.Time
}

// holding reports whether items are held.
func (d *delayLine) holding() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.held) > 0
}

// add holds it until due.
func (d *delayLine) add(it item, due time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.held = append(d.held, heldItem{it, due})
	if d.timer == nil {
		d.timer = time.AfterFunc(time.Until(due), d.release)
	}
}

// release queues the items that are due, in order, and re-arms the timer
// for the next.
func (d *delayLine) release() {
	var lost []item
	d.mu.Lock()
	d.timer = nil
	select {
	case <-d.p.t.closed:
		d.held = nil
		d.mu.Unlock()
		return
	default:
	}
	now := time.Now()
	n := 0
	for ; n < len(d.held) && !d.held[n].due.After(now); n++ {
		if it := d.held[n].it; !d.p.enqueue(it) {
			lost = append(lost, it)
		}
	}
	d.held = append(d.held[:0], d.held[n:]...)
	if len(d.held) > 0 {
		d.timer = time.AfterFunc(time.Until(d.held[0].due), d.release)
	}
	d.mu.Unlock()
	// Outside the lock: the callbacks are the transport's users'.
	for _, it := range lost {
		d.p.t.notQueued(d.p.id, it)
	}
}

// stop drops what is held; the transport is closing.
func (d *delayLine) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.held = nil
}
