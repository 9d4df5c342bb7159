package actors

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-actor/chronik-actor/actors/groups"
	"github.com/chronik-actor/chronik-actor/actors/txns"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// internalTopic reports whether name is one of the topics only the
// broker writes: clients may read them, never produce to, delete or
// repartition them (Kafka's Topic.isInternal).
func internalTopic(name string) bool {
	return name == groups.OffsetsTopic || name == txns.StateTopic
}

// ensureTxnTopic starts creating __transaction_state when the cluster has
// none, in the background, as Kafka does on the first transactional
// FindCoordinator: a cluster that never runs a transaction never hosts
// its 50 partitions. It reports whether the topic exists now; until it
// does, clients get COORDINATOR_NOT_AVAILABLE and retry.
func (b *Broker) ensureTxnTopic() bool {
	if b.controller.Metadata().Topics[txns.StateTopic] != nil {
		return true
	}
	if !b.txnTopicCreating.CompareAndSwap(false, true) {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer b.txnTopicCreating.Store(false)
		t := newTopic(txns.StateTopic, map[string]string{"cleanup.policy": "compact"})
		// transaction.state.log.replication.factor is 3, capped by the
		// cluster's size (as __consumer_offsets').
		rf := int16(min(3, len(b.nodeIDs())))
		cr, err := b.callController(raftactor.PlacedTopicCmd(t, b.cfg.TransactionPartitions, rf), 30*time.Second)
		switch {
		case err != nil:
			b.log.Warn("create "+txns.StateTopic, "err", err)
		case cr.Err != nil && !errors.Is(cr.Err, kerr.TopicAlreadyExists):
			b.log.Warn("create "+txns.StateTopic, "err", cr.Err)
		}
	}()
	return false
}

// txnCoordinatorOf is the node coordinating transactional id: the ready
// leader of its __transaction_state partition, here or as the leader
// table names it.
func (b *Broker) txnCoordinatorOf(id string) (int32, bool) {
	t := b.controller.Metadata().Topics[txns.StateTopic]
	if t == nil {
		return -1, false
	}
	p := b.txns.PartitionFor(id)
	if int(p) >= len(t.Groups) {
		return -1, false
	}
	node := b.leaderNode(t, p)
	if node < 0 {
		return -1, false
	}
	_, _, ok := b.brokerAddr(node)
	return node, ok
}
