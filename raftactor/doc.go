// Package raftactor is the replica actor: it owns one etcd-raft RawNode,
// runs the Ready loop (send, apply, persist, send, apply, Advance: see
// ready.go), buffers proposals between Readys and applies committed
// entries to a state machine (a partition log or the controller's
// metadata). A partition's leader makes each entry final as it proposes
// it (Preparer), and its batch goes into the segments as the entry is
// persisted (Persister), not into the raft log.
package raftactor
