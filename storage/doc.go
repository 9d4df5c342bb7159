// Package storage holds everything a node keeps on disk: the Pebble DB with
// the raft logs of all groups and the metadata keys, and the per-partition
// log segments (.log, sparse .index and .timeindex) with their read views.
package storage
