// Package testkit starts brokers for tests (in process, or as a child
// process that can be killed) and holds the end-to-end checks that drive
// them with real Kafka clients.
package testkit
