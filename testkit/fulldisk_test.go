package testkit

import (
	"bytes"
	"context"
	"errors"
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
	disk := t.TempDir()
	if err := syscall.Mount("tmpfs", disk, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(disk, syscall.MNT_DETACH) })

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
