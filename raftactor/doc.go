// Package raftactor is the replica actor: it owns one etcd-raft RawNode,
// runs the Ready loop (apply, persist, send, Advance), buffers proposals
// between Readys and applies committed entries to a state machine (a
// partition log or the controller's metadata).
package raftactor
