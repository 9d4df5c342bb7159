// Command kfakebroker runs franz-go's kfake as a child process with
// chronik-actor's flags. testkit's process checks (SIGKILL, restart on the
// same data directory) run against it when CHRONIK_TEST_TARGET=kfake, so
// the checks themselves are validated against a known broker.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	dataDir := flag.String("data-dir", "./data", "directory kfake persists its state to")
	addr := flag.String("kafka-addr", "127.0.0.1:9092", "Kafka listen address, HOST:PORT")
	flag.String("log-level", "info", "accepted for chronik-actor compatibility; kfake logs nothing")
	flag.Parse()

	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DataDir(*dataDir),
		// kfake always asks for 127.0.0.1:<port>; listen where we were told.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, *addr) }),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakebroker: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "kfakebroker: listening on %v, data in %s\n", c.ListenAddrs(), *dataDir)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	<-sigs
	c.Close()
}
