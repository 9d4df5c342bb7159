// Package actors is the broker node: the Kafka listener, one connection
// actor per client, the per-API request handlers (one file per API key,
// the group APIs' included: they hand their calls to the group
// coordinator of package groups through group_calls.go), the replica
// manager that spawns partition replicas (and creates __consumer_offsets),
// the fetch sessions, and the admin HTTP endpoint (/healthz, /metrics,
// /v1/cluster, and /v1/faults for tests). Broker.Kill and Broker.Pause
// are the in-process tests' kill -9 and SIGSTOP.
package actors
