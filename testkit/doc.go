// Package testkit starts brokers for tests (in process, or as a child
// process that can be killed) and holds the end-to-end checks that drive
// them with real Kafka clients.
//
// The checks run against chronik-actor by default. With
// CHRONIK_TEST_TARGET=kfake they run against franz-go's kfake instead, so
// that a check can be shown right on a known broker before it is trusted
// to judge this one.
//
// # Clusters
//
// Cluster is a chronik-actor cluster under test, with faults to inject;
// a test written against it runs on either implementation:
//
//   - NewCluster(t, n, opts...) starts n nodes in this process
//     (*LocalCluster) on loopback ports chosen at run time, with data
//     dirs under t.TempDir(), and returns once the cluster has formed
//     (a 3-node cluster serving a new RF 3 topic takes about 0.3-0.5 s:
//     BenchmarkNewCluster3 in testkit/clustertest). Every raft message
//     between nodes, and every call, notice and keepalive, passes through
//     one simulated network (cluster.Config.Network), which applies
//     Partition, Isolate, Drop, Delay, Hook and Pause; Kafka clients
//     reach every running node. Kill is actors.Broker.Kill (abrupt: no
//     hand-off, no checkpoint; the page cache keeps what was written, so
//     nothing unsynced is lost), Stop is Broker.Close (graceful), Restart
//     reuses the data dir and addresses, Pause freezes the node's Kafka
//     connections and raft clock while the network drops its traffic
//     both ways. The raft clock ticks every 20 ms instead of 100 ms, so
//     elections take 100-200 ms.
//   - NewProcessCluster(t, n, opts...) runs n chronik-actor processes
//     (*ProcessCluster): Kill is SIGKILL, Stop SIGTERM, Pause SIGSTOP,
//     Resume SIGCONT; the network faults are set on each node through
//     its admin endpoint's /v1/faults, served only because the generated
//     cluster.toml says [testing] faults = true. Hook is in-process only.
//
// A partition loses everything between its sides, keepalives included,
// so nodes see each other down as behind a firewall. Drop loses raft
// messages (and snapshots) at random, from a math/rand source seeded by
// the cluster's Seed (logged at start; ClusterSeed replays it); Delay
// holds everything but keepalives, keeping each link's order. Heal
// undoes them all (not Pause).
//
// Leader, Followers and WaitForLeader ask each reachable node's Metadata
// and trust the answer with the highest leader epoch; WaitForLeader
// waits until that leader names itself, which a node does only once its
// replica leads and has applied an entry of its term: it accepts writes.
// View is a node's /v1/cluster (whom it sees up, its partitions).
// ReadReplica, ReplicasAgree and ProduceTo ask one node alone (a
// follower serves Fetch v11+ up to its own high watermark), to compare
// replicas byte for byte and to see what one node does with a write.
// CreateClusterTopic creates a topic through a forming cluster.
//
// Options: ClusterSeed, WithNodeConfig (tune each node's cluster.Config),
// WithReplicationFactor and WithPartitions (topic defaults, min(3, n)
// and 1), WithLogger (in process; default: discard, or stderr with
// CHRONIK_TEST_LOG=1 or debug), WithDeadline (the cluster's own waits,
// 30 s). Client gives franz-go clients seeded with every node and tuned
// to see a failover quickly (ClientOpts), closed at cleanup.
//
// # Probes and interceptors
//
// Below Kafka, a test can talk to a node's actors (an in-process node:
// Broker.Node, LocalCluster.Broker). NewProbe spawns an actor on the
// node's actor system that records what it receives: give its PID as
// the ReplyTo of a raftactor.Propose sent to the node's ReplicaPID, say,
// and await the *raftactor.Result with ExpectMsg; ExpectNoMsg, FishFor
// and Reply (to the sender of the last message taken) complete it.
// Intercept installs an actors.Interceptor on one replica, controller or
// connection actor: it sees each message before the actor and may drop
// or delay it, until removed (at the latest at the test's end).
//
// Scenario scripts (package testkit/scenario, the shipped ones in
// testkit/scenarios) drive a Cluster from a small text format.
package testkit
