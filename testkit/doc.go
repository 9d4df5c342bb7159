// Package testkit starts brokers for tests (in process, or as a child
// process that can be killed) and holds the end-to-end checks that drive
// them with real Kafka clients.
//
// The checks run against chronik-actor by default. With
// CHRONIK_TEST_TARGET=kfake they run against franz-go's kfake instead, so
// that a check can be shown right on a known broker before it is trusted
// to judge this one.
package testkit
