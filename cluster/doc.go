// Package cluster describes the cluster: cluster.toml, per-node settings and
// their flag and environment overrides. Peer transport and placement join it
// with the replicated cluster.
package cluster
