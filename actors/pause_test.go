package actors

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A paused node answers nothing on a connection it already has, nor on a
// new one, and answers both once resumed: the request waited, it was not
// lost. Kill then stops the node with connections open.
func TestBrokerPauseResumeKill(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	killed := false
	t.Cleanup(func() {
		if !killed {
			b.Close()
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ask := func(within time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		_, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrApiVersionsRequest())
		return err
	}
	if err := ask(5 * time.Second); err != nil {
		t.Fatalf("before the pause: %v", err)
	}
	b.Pause()
	if err := ask(300 * time.Millisecond); err == nil {
		t.Fatal("a paused node answered on an open connection")
	}
	fresh, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	answered := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := fresh.SeedBrokers()[0].Request(ctx, kmsg.NewPtrApiVersionsRequest())
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a paused node answered a new connection: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	b.Resume()
	if err := <-answered; err != nil {
		t.Fatalf("the request sent while paused, after Resume: %v", err)
	}
	if err := ask(5 * time.Second); err != nil {
		t.Fatalf("after Resume: %v", err)
	}
	b.Pause()
	killed = true
	if err := b.Kill(); err != nil {
		t.Fatalf("kill a paused node: %v", err)
	}
	if err := ask(2 * time.Second); err == nil {
		t.Fatal("a killed node answered")
	}
}
