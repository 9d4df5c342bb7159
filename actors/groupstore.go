package actors

import "sync"

// groupStore is the materialized state of one __consumer_offsets
// partition: committed offsets and the last group metadata of each group
// whose records it holds. Its replica writes it at apply; group actors and
// handlers read it.
type groupStore struct {
	mu sync.RWMutex
}

func newGroupStore() *groupStore { return &groupStore{} }

// ObserveBatch implements raftactor.BatchObserver.
func (s *groupStore) ObserveBatch(batch []byte) {}
