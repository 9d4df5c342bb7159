package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A node restarted after a crash on a disk that has filled since stops at
// once, with one line naming the path and the cause and the fail-stop exit
// status (70), instead of retrying Pebble's flush forever. Needs root for
// a small tmpfs to fill.
func TestRestartOnFullDiskStopsAtOnce(t *testing.T) {
	SkipUnlessChronik(t, "chronik-actor's storage")
	disk := smallDisk(t, "size=16m")

	p := StartProcess(t, filepath.Join(disk, "data"))
	cl := NewClient(t, p.Addr(), kgo.DefaultProduceTopic("full"), kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before the disk filled")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	p.Kill()

	fill, err := os.Create(filepath.Join(disk, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := fill.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	fill.Close()

	var out bytes.Buffer
	cmd := exec.Command(p.bin, "--data-dir", p.dataDir, "--kafka-addr", p.addr)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("still running 10 s after starting on a full disk; %d bytes of log", out.Len())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 70 {
		t.Fatalf("exit %v, want status 70 (fail-stop); log:\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) > 5 || !strings.Contains(out.String(), "no space left on device") || !strings.Contains(out.String(), disk) {
		t.Fatalf("want a line or so naming the path and the cause, got %d lines:\n%s", len(lines), out.String())
	}
}

// A disk that fills while the node takes acks=all writes (no free-space
// floor) stops the node with the fail-stop status; once there is room
// again it restarts and every acknowledged record is there.
func TestDiskFillingStopsNodeWithoutLosingAcks(t *testing.T) {
	SkipUnlessChronik(t, "chronik-actor's storage")
	disk := smallDisk(t, "size=24m")
	conf := filepath.Join(t.TempDir(), "cluster.toml")
	if err := os.WriteFile(conf, []byte("[cluster]\nstorage_min_free_bytes = -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHRONIK_CONFIG", conf)
	p := StartProcess(t, filepath.Join(disk, "data"))

	cl := NewClient(t, p.Addr(), kgo.DefaultProduceTopic("fill"), kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(3), kgo.RecordDeliveryTimeout(5*time.Second),
		// Idempotent writes are retried without end once a request went
		// unanswered (failing them could break their sequence), and the
		// node is about to go away mid-request.
		kgo.DisableIdempotentWrite())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	acked := map[string]bool{}
	value := make([]byte, 8000)
	for i := 0; ; i++ {
		k := fmt.Sprint("k", i)
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: value}).FirstErr(); err != nil {
			break // the node stopped
		}
		acked[k] = true
		if ctx.Err() != nil {
			t.Fatal("the disk never filled")
		}
	}
	cl.Close()
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the node did not stop once its disk was full")
	}
	var ee *exec.ExitError
	if !errors.As(p.exitErr, &ee) || ee.ExitCode() != 70 {
		t.Fatalf("exit %v, want status 70 (fail-stop)", p.exitErr)
	}
	if len(acked) < 500 {
		t.Fatalf("only %d records acknowledged before the disk filled", len(acked))
	}

	// Room again: the node comes back with everything it acknowledged.
	if err := syscall.Mount("tmpfs", disk, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatal(err)
	}
	p.Restart()
	cons := NewClient(t, p.Addr(), kgo.ConsumeTopics("fill"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for missing := len(acked); missing > 0; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d acknowledged records missing after the restart", missing, len(acked))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if k := string(r.Key); acked[k] && !seen[k] {
				seen[k] = true
				missing--
			}
		})
	}
}

// smallDisk mounts a tmpfs of the given size on a temp dir, unmounted at
// cleanup: a disk small enough to fill. Mounting needs root. .ci/run runs
// as root (CI=true), so there a failed mount fails the test; a developer's
// non-root run skips it, saying why, rather than fake a full disk.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	disk := t.TempDir()
	if err := syscall.Mount("tmpfs", disk, "tmpfs", 0, size); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a tmpfs to fill (CI runs as root): %v", err)
		}
		t.Skipf("cannot mount a tmpfs to fill (needs root; runs in CI): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(disk, syscall.MNT_DETACH) })
	return disk
}
