package actors

import (
	"sync"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

// Producer ids come from the controller in blocks (Kafka 3.x's
// AllocateProducerIds does the same), so an idempotent producer's
// InitProducerId costs no raft round of its own: one controller entry
// serves producerIDBlock producers. The next block is fetched in the
// background once half of the current one is used (and at start), so a
// producer does not wait for the controller even while it is busy (a
// large CreateTopics). Ids of a block a node did not hand out before it
// stopped are never used; no id is handed out twice.
const producerIDBlock = 1000

type producerIDs struct {
	b  *Broker
	mu sync.Mutex
	// next and end bound the ids left in this node's block; spare is the
	// first id of the block fetched ahead, -1 when there is none.
	next, end, spare int64
	// filling is closed when the block request in flight completes;
	// lastErr is how the last one failed.
	filling chan struct{}
	lastErr error
}

func newProducerIDs(b *Broker) *producerIDs { return &producerIDs{b: b, spare: -1} }

// take returns a new producer id. It blocks only when both this node's
// block and its spare are used up: callers run it off any actor.
func (p *producerIDs) take() (int64, error) {
	for {
		p.mu.Lock()
		if p.next >= p.end && p.spare >= 0 {
			p.next, p.end, p.spare = p.spare, p.spare+producerIDBlock, -1
		}
		if p.next < p.end {
			id := p.next
			p.next++
			if p.end-p.next < producerIDBlock/2 {
				p.fillLocked()
			}
			p.mu.Unlock()
			return id, nil
		}
		w := p.fillLocked()
		p.mu.Unlock()
		<-w
		p.mu.Lock()
		failed := p.next >= p.end && p.spare < 0 && p.filling == nil
		err := p.lastErr
		p.mu.Unlock()
		if failed && err != nil {
			return -1, err
		}
	}
}

// prefetch fetches a spare block in the background.
func (p *producerIDs) prefetch() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fillLocked()
}

// fillLocked starts fetching a spare block unless one is held or on its
// way, and returns the channel closed when that fetch completes.
func (p *producerIDs) fillLocked() chan struct{} {
	if p.filling != nil {
		return p.filling
	}
	w := make(chan struct{})
	if p.spare >= 0 {
		close(w)
		return w
	}
	p.filling = w
	go func() {
		first, err := p.fetch()
		p.mu.Lock()
		if err == nil {
			p.spare = first
		}
		p.lastErr = err
		p.filling = nil
		p.mu.Unlock()
		close(w)
	}()
	return w
}

func (p *producerIDs) fetch() (int64, error) {
	res, err := p.b.callController(raftactor.AllocProducerIDsCmd(producerIDBlock), controllerTimeout)
	if err != nil {
		return -1, err
	}
	if res.Err != nil {
		return -1, res.Err
	}
	return res.ProducerID, nil
}
