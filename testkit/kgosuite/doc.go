// Package kgosuite runs franz-go's own kgo integration tests (the
// module's github.com/twmb/franz-go/pkg/kgo, at the version go.mod pins)
// against chronik-actor: one broker process, then a cluster of three.
// Its only test starts the broker(s) and runs `go test` on the kgo
// package as a child process, with KGO_SEEDS and the suite's other
// settings in its environment, and reports each kgo test as a subtest.
//
// It is a package of its own so that its run, minutes of another go
// test, has its own -timeout and runs beside testkit's checks rather
// than after them.
package kgosuite
