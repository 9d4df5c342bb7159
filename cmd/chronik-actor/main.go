// Command chronik-actor runs a chronik-actor broker node, and carries the
// tools that go with it: `chronik-actor [serve] [flags]` (the default),
// `chronik-actor version`, `chronik-actor bench produce`,
// `chronik-actor cluster status` and `chronik-actor scenario run`.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// version is stamped at build time:
//
//	go build -ldflags "-X main.version=v0.3.0" ./cmd/chronik-actor
var version = "dev"

// processStart is taken while package variables initialise, before main
// runs, so the start-up time serve logs includes runtime and flag set-up.
var processStart = time.Now()

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses: 2 is a usage or configuration mistake the operator must
// fix (as flag and most Unix tools use it); 1 is a failure at run time.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "version":
		fmt.Fprintln(stdout, "chronik-actor", version)
		return exitOK
	case "bench":
		return bench(args, stdout, stderr)
	case "cluster":
		return clusterCmd(args, stdout, stderr)
	case "scenario":
		return scenarioCmd(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "chronik-actor: unknown command %q\n%s", cmd, usage)
	return exitUsage
}

const usage = `usage:
  chronik-actor [serve] [flags]    run a broker node (see serve -h)
  chronik-actor version            print the version
  chronik-actor bench produce ...  measure produce throughput and latency (see bench produce -h)
  chronik-actor cluster status ... every node's view of the cluster: nodes up or down, leaders, lag
                                   (see cluster status -h)
  chronik-actor scenario run FILE  run scenario scripts against a fresh cluster (see README)
`
