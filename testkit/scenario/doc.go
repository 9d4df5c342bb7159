// Package scenario runs scenario scripts: small text files, in the spirit
// of etcd raft's datadriven tests, that start a testkit.Cluster, inject
// faults (partitions, kills, pauses, lost or delayed messages), drive it
// with Kafka requests and consumer groups, and check what the cluster
// then answers. One command a line; `# ` starts a comment. The README's
// "Scenario scripts" section lists the commands.
//
// Scripts run under `go test` (testkit/scenarios runs every file there as
// a subtest) and from the command line (`chronik-actor scenario run
// FILE`), where a Recorder stands in for testing.T. Every run has a seed,
// logged at its start and named in every failure: it feeds the cluster's
// ClusterSeed and the runner's own random choices, and `--seed N` (or a
// `seed N` line, or CHRONIK_SCENARIO_SEED) replays it.
package scenario
