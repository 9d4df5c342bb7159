// Package actors is the broker node: the listener, one connection actor per
// client, the per-API request handlers (one file per API key), the node's
// metadata cache and the replica manager that spawns partition replicas.
package actors
