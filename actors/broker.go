package actors

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/chronik-actor/chronik-actor/actors/groups"
	"github.com/chronik-actor/chronik-actor/actors/txns"
	"github.com/chronik-actor/chronik-actor/cluster"
	"github.com/chronik-actor/chronik-actor/raftactor"
	"github.com/chronik-actor/chronik-actor/storage"
)

// Broker is one running node: its actor system, Pebble DB, controller
// replica, partition replicas and Kafka listener.
type Broker struct {
	cfg  cluster.Config
	log  *slog.Logger
	sys  *actor.ActorSystem
	db   *storage.DB
	ln   net.Listener
	host string // advertised host and port
	port int32

	controller    *raftactor.Controller
	controllerPID *actor.PID
	// controllerReplica is the controller's raft replica on this node.
	controllerReplica *raftactor.Replica
	peers             *peers
	producerIDs       *producerIDs
	replicas          *replicaSet
	groups            *groups.Coordinator
	txns              *txns.Coordinator
	inter             *interBroker // requests to peers over the Kafka protocol
	sessions          *fetchSessions
	// txnTopicCreating: a creation of __transaction_state is under way.
	txnTopicCreating atomic.Bool

	metrics    *brokerMetrics
	admin      *adminServer           // nil without cfg.AdminAddr
	faults     *cluster.Faults        // the /v1/faults settings; nil without cfg.TestFaults
	gate       *pauseGate             // Pause and Resume
	serving    atomic.Bool            // Kafka accepted and not closing: /healthz is 200
	diskLow    atomic.Bool            // free space below the floor: produce refused (diskspace.go)
	reqMem     *memBudget             // bytes of requests read and not answered (reqmem.go)
	advertised atomic.Pointer[string] // host:port given to clients, once bound

	conns     atomic.Int64 // open client connections
	openConns sync.Map     // *conn -> its *actor.PID (struct{} until spawned), to close them on Close
	hooks     interceptors // testkit's interceptors (testkit_hooks.go)
	stopTick  chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// StartBroker opens cfg.DataDir, recovers every replica, and serves Kafka
// on cfg.KafkaAddr (port 0 picks a free port; Addr tells which).
func StartBroker(cfg cluster.Config, log *slog.Logger) (*Broker, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if n := max(len(cfg.Nodes), 1); int(cfg.DefaultReplicationFactor) > n {
		return nil, fmt.Errorf("replication_factor %d is more than the cluster's %d nodes", cfg.DefaultReplicationFactor, n)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	if cfg.FailStop == nil {
		cfg.FailStop = storage.ExitFailStop(log)
	}
	db, err := storage.OpenDBWith(filepath.Join(cfg.DataDir, "raft"), storage.DBOptions{Log: log, FailStop: cfg.FailStop})
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, log: log, db: db, stopTick: make(chan struct{}), sessions: newFetchSessions(), gate: newPauseGate()}
	if cfg.RequestMemoryBytes <= 0 {
		b.cfg.RequestMemoryBytes = cluster.DefaultRequestMemory
	}
	b.reqMem = newMemBudget(b.cfg.RequestMemoryBytes)
	if cfg.TestFaults {
		b.faults = &cluster.Faults{}
	}
	b.sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		// protoactor logs every dead letter and lifecycle event at Info;
		// only its warnings are worth an operator's attention.
		return slog.New(levelFilter{log.Handler(), slog.LevelWarn}).With("component", "actor")
	}))
	b.metrics = newBrokerMetrics(b)
	b.replicas = newReplicaSet(b)
	b.peers = newPeers(b)
	b.producerIDs = newProducerIDs(b)
	groupsStored, err := db.Groups()
	if err != nil {
		db.Close()
		return nil, err
	}
	b.peers.hadState = slices.Contains(groupsStored, raftactor.ControllerGroup)
	if err := b.peers.start(); err != nil {
		db.Close()
		return nil, err
	}
	if err := b.peers.refuseIfWiped(5 * time.Second); err != nil {
		b.peers.close()
		db.Close()
		return nil, err
	}
	b.groups = groups.New(b.sys, groupsNode{b}, groups.Config{
		OffsetsPartitions: cfg.OffsetsPartitions,
		OffsetsRetention:  cfg.OffsetsRetention,
	})
	b.txns = txns.New(b.sys, txnsNode{b}, txns.Config{
		Partitions: cfg.TransactionPartitions,
		MaxTimeout: cfg.TransactionMaxTimeout,
	})
	b.inter = newInterBroker(b)
	if err := b.startController(); err != nil {
		b.peers.close()
		db.Close()
		return nil, err
	}
	if cfg.AdminAddr != "" {
		if err := b.startAdmin(); err != nil {
			b.Close()
			return nil, err
		}
	}
	if !b.clustered() {
		if err := b.ensureOffsetsTopic(); err != nil {
			b.Close()
			return nil, err
		}
		b.waitReplayed(time.Minute)
		b.producerIDs.prefetch()
	}
	ln, err := net.Listen("tcp", cfg.KafkaAddr)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("listen %s: %w", cfg.KafkaAddr, err)
	}
	b.ln = ln
	adv := cfg.AdvertisedAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	host, port, err := net.SplitHostPort(adv)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("advertised address %q: %w", adv, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("advertised address %q: bad port", adv)
	}
	b.host, b.port = host, int32(p)
	b.advertised.Store(&adv)
	if b.clustered() {
		b.startJoin()
	}
	b.watchDisk()
	b.wg.Add(2)
	go b.accept()
	go b.tick()
	b.groups.Start()
	b.txns.Start()
	b.serving.Store(true)
	return b, nil
}

// Addr is the bound Kafka address.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// Close stops the node gracefully, as SIGTERM does: it hands the
// leadership of its groups to caught-up followers (for up to 5 s), stops
// accepting, stops every replica (closing their files), stops the admin
// endpoint and closes the DB.
func (b *Broker) Close() error { return b.shutdown(true) }

// Kill stops the node abruptly, for tests that simulate kill -9 in
// process: no leadership hand-off, no waiting for in-flight admin
// requests; the raft transport, the Kafka listener and every client
// connection are closed first, so peers and clients see the node vanish
// at once, and only then are the actors stopped and the DB closed (which
// an in-process restart needs: the files must be closed, the DB's lock
// released). No checkpoint is taken and nothing is fsynced on the way,
// but closing the replicas' files still writes the active segments'
// index files, and what was written and not fsynced stays in the page
// cache: in process, unsynced data cannot really be lost. A test that
// must lose it runs nodes as processes, and even SIGKILL keeps the page
// cache; only a machine's crash loses it.
func (b *Broker) Kill() error { return b.shutdown(false) }

func (b *Broker) shutdown(graceful bool) error {
	var err error
	b.closeOnce.Do(func() {
		// A paused node is let go first: its readers, writers and accept
		// loop wait on the gate and would never see their sockets close.
		b.gate.resume()
		if graceful {
			b.handOffLeadership(5 * time.Second)
		}
		b.serving.Store(false)
		if !graceful {
			// Gone at once, as a killed process is: nothing more goes to
			// peers or clients.
			b.peers.close()
			if b.ln != nil {
				b.ln.Close()
			}
			b.closeConns()
		}
		close(b.stopTick)
		if b.ln != nil {
			b.ln.Close()
		}
		b.wg.Wait()
		b.txns.Stop()
		b.groups.Stop()
		b.inter.close()
		// Clients first, so no request reaches a replica being stopped;
		// then the controller, so no topic spawns replicas after stopAll.
		b.closeConns()
		if b.controllerPID != nil {
			_ = b.sys.Root.StopFuture(b.controllerPID).Wait()
		}
		b.replicas.stopAll()
		b.peers.close()
		b.sys.Shutdown()
		// Last but the DB: until here /healthz tells a load balancer that
		// the node is going away.
		b.stopAdmin(graceful)
		err = b.db.Close()
	})
	return err
}

// closeConns closes every client connection's socket; their actors then
// stop on the read error.
func (b *Broker) closeConns() {
	b.openConns.Range(func(k, _ any) bool {
		k.(*conn).nc.Close()
		return true
	})
}

func (b *Broker) startController() error {
	c, applied, err := raftactor.OpenController(b.db, b.replicas.onMetadata)
	if err != nil {
		return err
	}
	b.controller = c
	b.peers.controller.Store(c)
	b.replicas.removeLeftovers()
	if err := b.replicas.removeOrphanGroups(c.Metadata()); err != nil {
		return err
	}
	// Replicas of the topics known at the last applied index come up
	// first; the replay of later controller entries then adds and removes.
	if err := b.replicas.sync(c.Metadata()); err != nil {
		return err
	}
	c.SetNodes(b.nodeIDs())
	r, err := raftactor.NewReplica(raftactor.Config{
		Group:     raftactor.ControllerGroup,
		NodeID:    uint64(b.cfg.NodeID),
		Voters:    voterIDs(b.nodeIDs()),
		Transport: b.peers.transport(),
		PeerUp:    b.peers.peerUp(),
		OnLeader:  b.peers.onLeader,
		DB:        b.db,
		SM:        c,
		Applied:   applied,
		Log:       b.log,
		FailStop:  b.cfg.FailStop,
	})
	if err != nil {
		return err
	}
	pid, err := b.sys.Root.SpawnNamed(b.interceptable(r.Props()), "controller")
	if err != nil {
		return err
	}
	b.controllerPID, b.controllerReplica = pid, r
	b.peers.register(raftactor.ControllerGroup, pid, r)
	return nil
}

// waitReplayed holds the listener back until every local replica has
// replayed its raft log after a restart, so the first answers a client
// gets (end offsets, fetches) already include every acknowledged record.
func (b *Broker) waitReplayed(limit time.Duration) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	var pending []*partitionHandle
	b.replicas.each(func(h *partitionHandle) { pending = append(pending, h) })
	for _, h := range pending {
		select {
		case <-h.replica.FirstReady():
		case <-deadline.C:
			b.log.Warn("serving before every replica replayed its log", "waited", limit)
			return
		}
	}
}

// defaultTick is the raft clock's period unless cfg.TickInterval says
// otherwise: raftactor counts its election timeout (5 ticks) and
// heartbeats (every tick) in it.
const defaultTick = 100 * time.Millisecond

// tick drives every replica's raft clock and checkpoints from one
// goroutine, so idle partitions cost one message per tick.
func (b *Broker) tick() {
	defer b.wg.Done()
	every := b.cfg.TickInterval
	if every <= 0 {
		every = defaultTick
	}
	t := time.NewTicker(every)
	defer t.Stop()
	msg := &raftactor.Tick{}
	// A quiesced replica is ticked every 5 s, for its housekeeping
	// (retention, whose checks are 30 s apart, and checkpoints) alone:
	// 10,000 idle partitions then cost 2,000 messages a second.
	housekeepingRounds := max(1, int(5*time.Second/every))
	for round := 0; ; round++ {
		select {
		case <-b.stopTick:
			return
		case <-t.C:
		}
		if b.gate.isPaused() {
			continue // a paused node's clock stands still
		}
		housekeeping := round%housekeepingRounds == 0
		if housekeeping || !b.controllerReplica.Quiesced() {
			b.sys.Root.Send(b.controllerPID, msg)
		}
		b.replicas.each(func(h *partitionHandle) {
			if housekeeping || !h.replica.Quiesced() {
				b.sys.Root.Send(h.pid, msg)
			}
		})
	}
}

func (b *Broker) accept() {
	defer b.wg.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			select {
			case <-b.stopTick:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			b.log.Error("accept", "err", err)
			return
		}
		if !b.gate.wait(b.stopTick) {
			nc.Close()
			return
		}
		if b.conns.Add(1) > maxConnections {
			b.conns.Add(-1)
			b.log.Warn("refusing connection: too many open", "remote", nc.RemoteAddr().String(), "max", maxConnections)
			nc.Close()
			continue
		}
		startConn(b, nc)
	}
}

// maxConnections caps client connections, which with each connection's
// in-flight cap bounds every mailbox of the node (Kafka bounds its request
// queue the same way).
const maxConnections = 10000

// startJoin registers the node with the controller and creates the
// offsets topic, in the background: the controller needs a quorum of
// nodes up to do either, and the node serves meanwhile (clients get
// retriable errors).
func (b *Broker) startJoin() {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			err := b.register()
			if err == nil {
				err = b.ensureOffsetsTopic()
			}
			if err == nil {
				b.producerIDs.prefetch()
				return
			}
			select {
			case <-b.stopTick:
				return
			case <-time.After(time.Second):
				b.log.Debug("not registered with the controller yet", "err", err)
			}
		}
	}()
}
