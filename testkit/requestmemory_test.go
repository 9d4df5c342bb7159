package testkit

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// rssBytes is a process's resident set size, from /proc.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// Under 40 connections that each declare a 100 MiB request and send 1 KB
// of it, and 10 that each send 99 MiB, the node's memory stays within its
// request budget (default 256 MiB) and a margin, and a normal client
// produces and consumes meanwhile.
func TestRequestMemoryBounded(t *testing.T) {
	SkipUnlessChronik(t, "chronik-actor's request budget")
	p := StartProcess(t, filepath.Join(t.TempDir(), "data"))
	pid := p.cmd.Process.Pid
	base := rssBytes(t, pid)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 40 {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, 100<<20), make([]byte, 1024)...)); err != nil {
			t.Fatal(err)
		}
	}
	var senders sync.WaitGroup
	for range 10 {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		senders.Add(1)
		go func() {
			defer senders.Done()
			_, _ = c.Write(append(binary.BigEndian.AppendUint32(nil, 99<<20), make([]byte, 99<<20)...))
		}()
	}

	var peak int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				peak = max(peak, rssBytes(t, pid))
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := NewClient(t, p.Addr(), kgo.DefaultProduceTopic("normal"), kgo.AllowAutoTopicCreation())
	for i := range 200 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint("v", i))}).FirstErr(); err != nil {
			t.Fatalf("normal client's produce under load: %v", err)
		}
	}
	cons := NewClient(t, p.Addr(), kgo.ConsumeTopics("normal"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 200 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("normal client read %d of 200 under load", got)
		}
		got += len(fs.Records())
	}
	// Until the senders are through (or 8 s): the budget makes them go a
	// couple at a time.
	done := make(chan struct{})
	go func() { senders.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(8 * time.Second):
	}
	close(stop)
	<-sampled
	const budget, margin = 256 << 20, 128 << 20
	t.Logf("RSS %d MiB at start, peak %d MiB under the load", base>>20, peak>>20)
	if peak > base+budget+margin {
		t.Fatalf("RSS peaked at %d MiB: over the %d MiB budget plus %d MiB margin above the %d MiB at start", peak>>20, budget>>20, margin>>20, base>>20)
	}
}
