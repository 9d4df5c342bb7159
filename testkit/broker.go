package testkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/actors"
	"github.com/chronik-actor/chronik-actor/cluster"
	"github.com/chronik-actor/chronik-actor/testkit/loopback"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// Broker is a chronik-actor node running inside the test process, on a
// port of its own and a temporary data directory.
type Broker struct {
	b *actors.Broker
}

// Addr is the bound Kafka address.
func (b *Broker) Addr() string { return b.b.Addr() }

// Node is the running node itself, for its testkit hooks (actor system,
// replica PIDs, interceptors).
func (b *Broker) Node() *actors.Broker { return b.b }

// StartBroker starts a single chronik-actor node in process and closes it
// when the test ends. It returns once the node answers ApiVersions.
func StartBroker(t testing.TB) *Broker {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "broker.log")
	// The broker logs to a file, not t.Log: its goroutines may still log
	// after the test returns, which t.Log forbids. The tail is shown when
	// the test fails.
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("broker log: %v", err)
	}
	cfg := cluster.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.KafkaAddr = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b, err := actors.StartBroker(cfg, log)
	if err != nil {
		logFile.Close()
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
		logFile.Close()
		if t.Failed() {
			logTail(t, "in-process broker", logPath)
		}
	})
	if err := waitAPIVersions(b.Addr(), 30*time.Second, nil); err != nil {
		t.Fatalf("broker at %s: %v", b.Addr(), err)
	}
	return &Broker{b: b}
}

// Process is a broker running as a child process, so that a check can
// SIGKILL it (no deferred code, no flush, no graceful close) and start it
// again on the same data directory and port.
type Process struct {
	t       testing.TB
	bin     string
	dataDir string
	addr    string
	admin   string // admin HTTP address; cluster nodes only
	config  string // the cluster.toml it runs from; cluster nodes only
	logPath string
	starts  int
	// args, when set, replace the single-node flags: a cluster node is
	// started with --config FILE --node-id N.
	args []string

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returns
	// exitErr is what cmd.Wait returned, set before exited is closed.
	exitErr error
}

// Seeds is the comma-separated Kafka addresses of procs, which NewClient
// takes as its seed brokers.
func Seeds(procs []*Process) string {
	addrs := make([]string, len(procs))
	for i, p := range procs {
		addrs[i] = p.Addr()
	}
	return strings.Join(addrs, ",")
}

// Addr is the process's Kafka address; it stays the same across restarts.
func (p *Process) Addr() string { return p.addr }

// AdminAddr is a cluster node's admin HTTP address, "" for a single
// process.
func (p *Process) AdminAddr() string { return p.admin }

// ConfigPath is the cluster.toml a cluster node runs from, "" for a
// single process.
func (p *Process) ConfigPath() string { return p.config }

// StartProcess builds the broker binary (once per test process) and runs
// it on dataDir and a free 127.0.0.1 port. With CHRONIK_TEST_TARGET=kfake
// the binary is testkit/internal/kfakebroker, which takes the same flags.
func StartProcess(t testing.TB, dataDir string) *Process {
	t.Helper()
	p := &Process{
		t:       t,
		bin:     builtBinary(t, TargetKind()),
		dataDir: dataDir,
		addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))),
		logPath: filepath.Join(t.TempDir(), "process.log"),
	}
	t.Cleanup(func() {
		if p.running() {
			p.Kill()
		}
		if t.Failed() {
			logTail(t, "broker process", p.logPath)
		}
	})
	p.start()
	return p
}

// StartCluster runs n chronik-actor processes as one cluster: one
// generated cluster.toml (replication factor n, n partitions, topic
// auto-creation on) names every node's Kafka, raft and admin HTTP ports,
// chosen now, and data directory, and node i+1 is procs[i], started with
// --config FILE --node-id i+1, all at once. It returns once each answers
// ApiVersions, which a cluster node does before its controller has a
// quorum: wait for the cluster to form (say, a CreateTopics that
// succeeds) before relying on it.
func StartCluster(t testing.TB, n int) []*Process {
	t.Helper()
	return startCluster(t, n, clusterFile{cluster: fmt.Sprintf("replication_factor = %d\npartitions = %d\nauto_create_topics = true\n", n, n)})
}

// clusterFile is what a generated cluster.toml holds besides the nodes'
// addresses and data dirs.
type clusterFile struct {
	cluster string           // the [cluster] table's lines
	racks   map[int32]string // node id -> rack; none when absent
	testing string           // the [testing] table's lines, if any
}

func startCluster(t testing.TB, n int, f clusterFile) []*Process {
	t.Helper()
	bin := builtBinary(t, KindChronik)
	dir := t.TempDir()
	var toml strings.Builder
	fmt.Fprintf(&toml, "[cluster]\n%s", f.cluster)
	if f.testing != "" {
		fmt.Fprintf(&toml, "\n[testing]\n%s", f.testing)
	}
	procs := make([]*Process, n)
	for i := range procs {
		id := i + 1
		p := &Process{
			t:       t,
			bin:     bin,
			dataDir: filepath.Join(dir, fmt.Sprintf("node%d", id)),
			addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))),
			logPath: filepath.Join(dir, fmt.Sprintf("node%d.log", id)),
		}
		raft := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		p.admin = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		fmt.Fprintf(&toml, "\n[[nodes]]\nid = %d\nkafka = %q\nraft = %q\nadmin = %q\ndata_dir = %q\n", id, p.addr, raft, p.admin, p.dataDir)
		if r := f.racks[int32(id)]; r != "" {
			fmt.Fprintf(&toml, "rack = %q\n", r)
		}
		procs[i] = p
	}
	cfgPath := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfgPath, []byte(toml.String()), 0o644); err != nil {
		t.Fatalf("write cluster.toml: %v", err)
	}
	for i, p := range procs {
		p.config = cfgPath
		p.args = []string{"--config", cfgPath, "--node-id", strconv.Itoa(i + 1), "--log-level", "info"}
		t.Cleanup(func() {
			if p.running() {
				p.Kill()
			}
			if t.Failed() {
				logTail(t, fmt.Sprintf("node %d process", i+1), p.logPath)
			}
		})
	}
	// All at once, as `make cluster` does: each node's start waits a few
	// seconds for its peers to answer (peers.refuseIfWiped), so starting
	// them one after another would only be slower.
	for _, p := range procs {
		p.launch()
	}
	for _, p := range procs {
		p.awaitReady()
	}
	return procs
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Process) Kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("kill broker: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("broker pid %d still running 30s after SIGKILL", p.cmd.Process.Pid)
	}
}

// Stop sends SIGTERM, the signal an operator's graceful stop sends, and
// waits until the process has exited. It fails the test unless the
// process exits by itself, with status 0, within the wait: a graceful stop
// that hangs or ends in an error is the broker's failure.
func (p *Process) Stop(within time.Duration) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM broker pid %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.exited:
	case <-time.After(within):
		p.t.Fatalf("broker pid %d still running %v after SIGTERM (log: %s)", p.cmd.Process.Pid, within, p.logPath)
	}
	if p.exitErr != nil {
		p.t.Fatalf("broker pid %d exited after SIGTERM with %v, want status 0 (log: %s)", p.cmd.Process.Pid, p.exitErr, p.logPath)
	}
}

// Restart starts the (killed) process again on the same data directory and
// port and waits until it answers ApiVersions.
func (p *Process) Restart() {
	p.t.Helper()
	if p.running() {
		p.t.Fatalf("restart: broker pid %d is still running", p.cmd.Process.Pid)
	}
	p.start()
}

func (p *Process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// start launches the process and waits until it answers ApiVersions. A
// port of its own taken while it was down (by a client's ephemeral port:
// the tests of other packages run at the same time) makes it exit at once
// with "address already in use"; it is launched again, as an operator
// would, until the port is free or 30 s have passed.
func (p *Process) start() {
	p.t.Helper()
	var failed error
	err := wait.Until(context.Background(), 30*time.Second, func() error {
		p.launch()
		err := waitAPIVersions(p.addr, 60*time.Second, p.exited)
		switch {
		case err == nil:
			return nil
		case p.exitedOnBusyPort():
			return fmt.Errorf("start #%d: %w", p.starts, err)
		}
		failed = err
		return nil
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		p.t.Fatalf("broker process (start #%d) at %s: %v", p.starts, p.addr, err)
	}
}

// exitedOnBusyPort reports whether the last start exited because one of
// its ports was in use.
func (p *Process) exitedOnBusyPort() bool {
	select {
	case <-p.exited:
	default:
		return false
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return false
	}
	marker := fmt.Sprintf("=== testkit: start #%d on ", p.starts)
	i := bytes.LastIndex(b, []byte(marker))
	return i >= 0 && bytes.Contains(b[i:], []byte("address already in use"))
}

// launch starts the process without waiting for it.
func (p *Process) launch() {
	p.t.Helper()
	p.starts++
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatalf("process log: %v", err)
	}
	fmt.Fprintf(logFile, "=== testkit: start #%d on %s\n", p.starts, p.addr)
	args := p.args
	if args == nil {
		args = []string{"--data-dir", p.dataDir, "--kafka-addr", p.addr, "--log-level", "info"}
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		p.t.Fatalf("start %s: %v", p.bin, err)
	}
	exited := make(chan struct{})
	n := p.starts
	go func() {
		// The exit status goes to the log: a broker that dies by itself
		// mid-test shows why there, beside its last words.
		err := cmd.Wait()
		fmt.Fprintf(logFile, "=== testkit: start #%d exited: %v\n", n, err)
		logFile.Close()
		p.exitErr = err
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
}

// awaitReady waits until the started process answers ApiVersions.
func (p *Process) awaitReady() {
	p.t.Helper()
	if err := waitAPIVersions(p.addr, 60*time.Second, p.exited); err != nil {
		p.t.Fatalf("broker process (start #%d) at %s: %v", p.starts, p.addr, err)
	}
}

// freePort asks the kernel for a free port. Another process could take it
// before the broker binds it; on a test machine that window is harmless.
func freePort(t testing.TB) int { return loopback.Port(t) }

// Binaries are built once per test process, whichever test asks first;
// TestMain removes them.
const (
	chronikPkg = "github.com/chronik-actor/chronik-actor/cmd/chronik-actor"
	kfakePkg   = "github.com/chronik-actor/chronik-actor/testkit/internal/kfakebroker"
)

// build is one binary, built on first use. RemoveBuiltBinaries forgets it,
// so a later use (the next -count run, or a test after an in-process
// `scenario` command removed them) builds it again.
type build struct {
	mu   sync.Mutex
	dir  string
	path string
	err  error
}

var builds = map[Kind]*build{KindChronik: {}, KindKfake: {}}

func builtBinary(t testing.TB, kind Kind) string {
	t.Helper()
	b := builds[kind]
	pkg := chronikPkg
	if kind == KindKfake {
		pkg = kfakePkg
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dir == "" && b.err == nil {
		b.dir, b.err = os.MkdirTemp("", "chronik-testkit-bin-")
		if b.err == nil {
			b.path = filepath.Join(b.dir, filepath.Base(pkg))
			if out, err := exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput(); err != nil {
				b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			}
		}
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// RemoveBuiltBinaries deletes what builtBinary built; call it from TestMain.
func RemoveBuiltBinaries() {
	for _, b := range builds {
		b.mu.Lock()
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
		b.dir, b.path, b.err = "", "", nil
		b.mu.Unlock()
	}
}

// waitAPIVersions retries an ApiVersions round trip until it succeeds, the
// deadline passes, or exited is closed (the process died: waiting longer
// would only hide why).
func waitAPIVersions(addr string, within time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := wait.Until(ctx, within, func() error { return probeAPIVersions(addr) })
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("process exited before answering ApiVersions (last probe: %v)", err)
	default:
		return fmt.Errorf("no ApiVersions answer within %v: %w", within, err)
	}
}

// probeAPIVersions does one ApiVersions v0 round trip: every broker serves
// v0, and its response header has no tagged fields to skip.
func probeAPIVersions(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	const corr = 1
	if _, err := conn.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("testkit-probe")).AppendRequest(nil, req, corr)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("ApiVersions response frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body[4:]); err != nil {
		return fmt.Errorf("decode ApiVersions v0: %w", err)
	}
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		return fmt.Errorf("ApiVersions: error code %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	return nil
}

// logTail shows the end of a broker's log in the test output.
func logTail(t testing.TB, what, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Logf("%s log: %v", what, err)
		return
	}
	defer f.Close()
	const keep = 60
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > keep {
			lines = lines[1:]
		}
	}
	t.Logf("last %d lines of the %s log (%s):", len(lines), what, path)
	for _, l := range lines {
		t.Log("  " + l)
	}
}
