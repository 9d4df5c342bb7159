package main

// chronik-actor scenario run: scenario scripts (testkit/scenario) outside
// go test.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/chronik-actor/chronik-actor/testkit"
	"github.com/chronik-actor/chronik-actor/testkit/scenario"
)

const scenarioUsage = `usage: chronik-actor scenario run FILE... [--seed N] [--quiet]
`

func scenarioCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "run" {
		fmt.Fprint(stderr, scenarioUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("chronik-actor scenario run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Int64("seed", 0, "replay a run: the seed its output names (default: the script's `seed N` line, else $"+scenario.SeedEnv+", else a random one)")
	quiet := fs.Bool("quiet", false, "print only the seed, failures and the outcome, not each step")
	// Flags may come before or after the files.
	var files []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "chronik-actor scenario run: no script given\n%s", scenarioUsage)
		return exitUsage
	}
	hasSeed := false
	fs.Visit(func(f *flag.Flag) { hasSeed = hasSeed || f.Name == "seed" })
	// Every script is parsed before any runs: a typo in the last one
	// should not wait for the first one's cluster.
	scripts := make([]*scenario.Script, len(files))
	for i, f := range files {
		s, err := scenario.ParseFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "chronik-actor scenario run: %v\n", err)
			return exitUsage
		}
		scripts[i] = s
	}
	// `cluster N processes` builds the broker binary once, into a
	// temporary directory.
	defer testkit.RemoveBuiltBinaries()
	failed := 0
	for _, s := range scripts {
		opts := scenario.Options{Seed: *seed, HasSeed: hasSeed}
		start := time.Now()
		rec := scenario.NewRecorder(s.Name, stdout)
		if *quiet {
			rec.Out = quietLog{stdout}
		}
		ok := scenario.RunRecorded(rec, func(t testing.TB) { scenario.Run(t, s, opts) })
		took := time.Since(start).Round(10 * time.Millisecond)
		if ok {
			fmt.Fprintf(stdout, "PASS %s (%v)\n", s.Path, took)
		} else {
			failed++
			fmt.Fprintf(stdout, "FAIL %s (%v)\n", s.Path, took)
		}
	}
	if failed > 0 {
		return exitFailure
	}
	return exitOK
}

// quietLog drops the Recorder's log lines but its failures and the seed.
type quietLog struct{ w io.Writer }

// Write implements io.Writer.
func (q quietLog) Write(p []byte) (int, error) {
	if bytesHasPrefix(p, "FAIL: ") || bytesHasPrefix(p, "scenario ") {
		return q.w.Write(p)
	}
	return len(p), nil
}

func bytesHasPrefix(p []byte, s string) bool { return len(p) >= len(s) && string(p[:len(s)]) == s }
