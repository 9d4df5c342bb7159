// Package groups is the group coordinator: it serves Kafka's consumer
// groups (classic JoinGroup/SyncGroup groups and KIP-848 consumer groups)
// and their committed offsets from the __consumer_offsets partitions this
// node leads. One actor per group owns its members and timers; every
// durable change is a record written through the partition's replica,
// and each partition's store is rebuilt from those records, so a restarted
// node or a new leader reloads the groups from the log.
//
// It knows the node only through Node (metadata and the offsets replicas);
// the connection side (package actors) hands it Calls and relays answers.
package groups
