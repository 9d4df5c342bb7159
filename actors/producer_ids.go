package actors

import (
	"sync"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

// Producer ids come from the controller in blocks (Kafka 3.x's
// AllocateProducerIds does the same), so an idempotent producer's
// InitProducerId costs no raft round of its own: one controller entry
// serves producerIDBlock producers. Ids of a block a node did not hand out
// before it stopped are never used; ids are never handed out twice.
const producerIDBlock = 1000

type producerIDs struct {
	b  *Broker
	mu sync.Mutex
	// next and end bound the ids left in this node's block.
	next, end int64
	// filling is closed when a block request in flight completes.
	filling chan struct{}
}

// take returns a new producer id, asking the controller for a block when
// this node's is used up. It blocks: callers run it off any actor.
func (p *producerIDs) take() (int64, error) {
	for {
		p.mu.Lock()
		if p.next < p.end {
			id := p.next
			p.next++
			p.mu.Unlock()
			return id, nil
		}
		if w := p.filling; w != nil {
			p.mu.Unlock()
			<-w // another caller is fetching the next block
			continue
		}
		w := make(chan struct{})
		p.filling = w
		p.mu.Unlock()
		first, err := p.fetch()
		p.mu.Lock()
		if err == nil {
			p.next, p.end = first, first+producerIDBlock
		}
		p.filling = nil
		close(w)
		p.mu.Unlock()
		if err != nil {
			return -1, err
		}
	}
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
