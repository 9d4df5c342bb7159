package actors

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/chronik-actor/chronik-actor/actors/groups"
	"github.com/chronik-actor/chronik-actor/actors/txns"
	"github.com/chronik-actor/chronik-actor/raftactor"
	"github.com/chronik-actor/chronik-actor/storage"
)

// partitionHandle is what request handlers hold of a partition replica:
// its actor for proposals, and its state machine for read views.
type partitionHandle struct {
	topic   *raftactor.Topic
	index   int32
	pid     *actor.PID
	replica *raftactor.Replica
	sm      *raftactor.Partition
}

// replicaSet is the node's replica manager: it keeps one replica actor per
// partition hosted here in step with the controller's metadata.
type replicaSet struct {
	b  *Broker
	mu sync.RWMutex // handlers read; sync writes
	m  map[string][]*partitionHandle

	// The controller hands each metadata change to a worker goroutine
	// (onMetadata), which opens and removes replicas off the controller's
	// goroutine: opening a new topic's thousand replicas takes seconds,
	// during which the controller's raft would neither tick nor answer
	// its peers, and its group would lose its leader. latest holds the
	// newest metadata not yet synced (sync reconciles with the newest, so
	// older ones are skipped); syncing serializes sync calls.
	latest   chan *raftactor.Metadata
	stop     chan struct{}
	worker   sync.Once
	stopOnce sync.Once
	done     sync.WaitGroup
	syncing  sync.Mutex
}

func newReplicaSet(b *Broker) *replicaSet {
	return &replicaSet{b: b, m: make(map[string][]*partitionHandle),
		latest: make(chan *raftactor.Metadata, 1), stop: make(chan struct{})}
}

func (s *replicaSet) partitionsDir() string { return filepath.Join(s.b.cfg.DataDir, "partitions") }

// get returns the replica of topic/partition, or nil.
func (s *replicaSet) get(topic string, partition int32) *partitionHandle {
	s.mu.RLock()
	defer s.mu.RUnlock()
	hs := s.m[topic]
	if partition < 0 || int(partition) >= len(hs) || hs[partition].replica == nil {
		return nil
	}
	return hs[partition]
}

func (s *replicaSet) each(fn func(*partitionHandle)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, hs := range s.m {
		for _, h := range hs {
			if h.replica != nil {
				fn(h)
			}
		}
	}
}

// onMetadata runs on the controller actor after every metadata change:
// it passes the change to the worker and returns at once. The controller
// is its only caller, so the drain-then-send never blocks.
func (s *replicaSet) onMetadata(_, cur *raftactor.Metadata) {
	s.worker.Do(func() {
		s.done.Add(1)
		go s.run()
	})
	select {
	case <-s.latest: // superseded
	default:
	}
	s.latest <- cur
}

// run syncs the replicas with each metadata change until stopAll.
func (s *replicaSet) run() {
	defer s.done.Done()
	for {
		select {
		case <-s.stop:
			return
		case md := <-s.latest:
			if err := s.sync(md); err != nil {
				s.b.log.Error("replica manager", "err", err)
			}
		}
	}
}

// sync spawns replicas for new topics and deletes those of removed ones.
// A topic recreated under the same name is a new topic (new id): the old
// replicas go first. Replicas are opened outside the handlers' lock, so
// that requests for other topics go on meanwhile.
func (s *replicaSet) sync(md *raftactor.Metadata) error {
	s.syncing.Lock()
	defer s.syncing.Unlock()
	s.mu.Lock()
	for name, hs := range s.m {
		if t, ok := md.Topics[name]; ok && len(hs) > 0 && hs[0].topic.ID == t.ID {
			continue
		}
		for _, h := range hs {
			s.deleteLocked(h)
		}
		delete(s.m, name)
	}
	s.mu.Unlock()
	// Only sync writes s.m, and syncing is held: reading it here without
	// mu races with no writer.
	// Fewest partitions to open first, so that a small topic is not held
	// behind a big one; and a big one yields to newer metadata every
	// yieldEvery replicas, installing what it opened so far (get answers
	// nil for the rest until the next sync opens them).
	type todo struct {
		name string
		t    *raftactor.Topic
		old  []*partitionHandle
	}
	var work []todo
	for name, t := range md.Topics {
		if old := s.m[name]; len(old) != len(t.Groups) {
			work = append(work, todo{name, t, old})
		}
	}
	slices.SortFunc(work, func(a, b todo) int {
		return cmp.Or(cmp.Compare(len(a.t.Groups)-len(a.old), len(b.t.Groups)-len(b.old)), strings.Compare(a.name, b.name))
	})
	for _, w := range work {
		// A new topic, or partitions added to one (CreatePartitions): open
		// the ones not open yet. A new slice, as readers hold the old one.
		hs := append(make([]*partitionHandle, 0, len(w.t.Groups)), w.old...)
		yielded := false
		for i := len(w.old); i < len(w.t.Groups); i++ {
			select {
			case <-s.stop:
				s.closeOpened(hs[len(w.old):])
				return nil
			default:
			}
			if i > len(w.old) && (i-len(w.old))%yieldEvery == 0 && len(s.latest) > 0 {
				yielded = true
				break
			}
			h, err := s.open(w.t, int32(i))
			if err != nil {
				s.closeOpened(hs[len(w.old):])
				return err
			}
			hs = append(hs, h)
		}
		s.mu.Lock()
		s.m[w.name] = hs
		s.mu.Unlock()
		if yielded {
			return nil // run syncs the newer metadata next, and goes on from here
		}
	}
	return nil
}

// yieldEvery is how many replicas a sync opens of one topic before it
// looks for newer metadata.
const yieldEvery = 64

// closeOpened stops replicas a sync opened but did not install: the node
// is stopping, or the topic could not be opened whole.
func (s *replicaSet) closeOpened(hs []*partitionHandle) {
	for _, h := range hs {
		if h.replica != nil {
			s.b.peers.forget(h.replica.Group())
			_ = s.b.sys.Root.StopFuture(h.pid).Wait()
		}
	}
}

func (s *replicaSet) open(t *raftactor.Topic, i int32) (*partitionHandle, error) {
	group := t.Groups[i]
	if !slices.Contains(t.Replicas[i], s.b.cfg.NodeID) {
		// Hosted by other nodes: a placeholder keeps the topic's slice
		// indexed by partition; get answers nil for it.
		return &partitionHandle{topic: t, index: i}, nil
	}
	segBytes := s.b.cfg.SegmentBytes
	if v, ok := t.Configs["segment.bytes"]; ok {
		fmt.Sscan(v, &segBytes)
	}
	pc := raftactor.PartitionConfig{
		Group: group,
		Dir:   filepath.Join(s.partitionsDir(), fmt.Sprintf("%s-%d", t.Name, i)),
		DB:    s.b.db,
		Log:   storage.LogOptions{SegmentBytes: segBytes},
	}
	switch t.Name {
	case groups.OffsetsTopic:
		pc.Observer = s.b.groups.Store(i)
	case txns.StateTopic:
		pc.Observer = s.b.txns.Store(i)
	}
	pc.Retention = retentionConfig(t.Configs)
	if internalTopic(t.Name) {
		// Only the internal topic for now: compaction runs on the
		// replica's goroutine and holds every key in memory, fine for
		// group records, not yet for a large user topic.
		pc.Compaction = compactionConfig(t.Configs)
	}
	sm, applied, err := raftactor.OpenPartition(pc)
	if err != nil {
		return nil, fmt.Errorf("open %s-%d: %w", t.Name, i, err)
	}
	r, err := raftactor.NewReplica(raftactor.Config{
		Group:           group,
		NodeID:          uint64(s.b.cfg.NodeID),
		Voters:          voterIDs(t.Replicas[i]),
		DB:              s.b.db,
		SM:              sm,
		Transport:       s.b.peers.transport(),
		PeerUp:          s.b.peers.peerUp(),
		OnLeader:        s.b.peers.onLeader,
		Applied:         applied,
		Log:             s.b.log,
		CheckpointEvery: s.b.cfg.FlushInterval,
		RetainLogBytes:  s.b.cfg.RetainLogBytes,
		FailStop:        s.b.cfg.FailStop,
	})
	if err != nil {
		sm.Close(false)
		return nil, err
	}
	pid, err := s.b.sys.Root.SpawnNamed(s.b.interceptable(r.Props()), fmt.Sprintf("partition-%d", group))
	if err != nil {
		sm.Close(false)
		return nil, err
	}
	s.b.peers.register(group, pid, r)
	return &partitionHandle{topic: t, index: i, pid: pid, replica: r, sm: sm}, nil
}

// voterIDs are a replica set's node ids as raft names them.
func voterIDs(nodes []int32) []uint64 {
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		out[i] = uint64(n)
	}
	return out
}

// Kafka's defaults for the topic configs of retention.
const (
	defaultRetentionMs    = 7 * 24 * 60 * 60 * 1000 // retention.ms: 7 days
	defaultRetentionBytes = -1                      // retention.bytes: unlimited
)

// retentionConfig is the delete retention of a topic, nil when its
// cleanup.policy does not include delete: as in Kafka, "compact,delete"
// is subject to retention and "compact" (__consumer_offsets) is not.
// The values were validated when the topic was created.
func retentionConfig(configs map[string]string) *raftactor.RetentionConfig {
	if p, ok := configs["cleanup.policy"]; ok && !slices.Contains(strings.Split(p, ","), "delete") {
		return nil
	}
	rc := &raftactor.RetentionConfig{Ms: defaultRetentionMs, Bytes: defaultRetentionBytes}
	if v, ok := configs["retention.ms"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			rc.Ms = n
		}
	}
	if v, ok := configs["retention.bytes"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			rc.Bytes = n
		}
	}
	return rc
}

// compactionInterval is how often a compacted topic's partitions consider
// compaction (Kafka's cleaner backoff is per broker; here per partition).
var compactionInterval = raftactor.DefaultCompactionCheck

// compactionConfig is the log compaction of a topic, nil unless its
// cleanup.policy includes compact ("compact" or "compact,delete").
func compactionConfig(configs map[string]string) *raftactor.CompactionConfig {
	p, ok := configs["cleanup.policy"]
	if !ok || !slices.Contains(strings.Split(p, ","), "compact") {
		return nil
	}
	cc := &raftactor.CompactionConfig{CheckEvery: compactionInterval, MinDirtyRatio: raftactor.DefaultMinDirtyRatio}
	if v, ok := configs["min.cleanable.dirty.ratio"]; ok {
		if r, err := strconv.ParseFloat(v, 64); err == nil && r > 0 && r <= 1 {
			cc.MinDirtyRatio = r
		}
	}
	return cc
}

// deleteLocked renames the partition's directory out of the way at once,
// as Kafka does, so a topic recreated under the same name starts clean
// while the old replica closes its files and removes the renamed copy.
func (s *replicaSet) deleteLocked(h *partitionHandle) {
	if h.replica == nil {
		return // hosted elsewhere
	}
	s.b.peers.forget(h.replica.Group())
	dir := filepath.Join(s.partitionsDir(), fmt.Sprintf("%s-%d", h.topic.Name, h.index))
	h.replica.MarkDeleting()
	if err := os.Rename(dir, raftactor.DeletedDir(dir, h.topic.Groups[h.index])); err != nil && !os.IsNotExist(err) {
		s.b.log.Error("delete partition", "dir", dir, "err", err)
	}
	s.b.sys.Root.Send(h.pid, &raftactor.Delete{})
}

// stopAll stops the worker and every replica, waiting for their files to
// close.
func (s *replicaSet) stopAll() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.done.Wait()
	s.syncing.Lock() // a sync at start, if one is running
	defer s.syncing.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var fs []*actor.Future
	for _, hs := range s.m {
		for _, h := range hs {
			if h.replica != nil {
				fs = append(fs, s.b.sys.Root.StopFuture(h.pid))
			}
		}
	}
	for _, f := range fs {
		_ = f.Wait()
	}
	s.m = map[string][]*partitionHandle{}
}

// removeOrphanGroups deletes the raft keys of groups the metadata no
// longer names: a crash right after a topic's deletion was applied can
// leave them, since that removal is not synced.
func (s *replicaSet) removeOrphanGroups(md *raftactor.Metadata) error {
	known := map[uint64]bool{raftactor.ControllerGroup: true}
	for _, t := range md.Topics {
		for _, g := range t.Groups {
			known[g] = true
		}
	}
	groups, err := s.b.db.Groups()
	if err != nil {
		return err
	}
	for _, g := range groups {
		if !known[g] {
			s.b.log.Info("removing the raft log of a deleted partition", "group", g)
			if err := s.b.db.DeleteGroup(g); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeLeftovers deletes partition directories a crash left half-deleted.
func (s *replicaSet) removeLeftovers() {
	ents, _ := os.ReadDir(s.partitionsDir())
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), "-delete") {
			_ = os.RemoveAll(filepath.Join(s.partitionsDir(), e.Name()))
		}
	}
}
