// Package wait is the one way the project's tests wait: poll a condition
// until it holds or a deadline passes, and fail with the condition's last
// error. It imports nothing of the project, so every package's tests
// (raftactor's and actors' internal ones included) can use it without an
// import cycle.
package wait

import (
	"context"
	"testing"
	"time"
)

// For polls cond until it returns nil, failing the test with cond's last
// error once within has passed.
func For(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	if err := Until(context.Background(), within, cond); err != nil {
		t.Fatalf("condition not met within %v: %v", within, err)
	}
}

// Until polls cond until it returns nil (then Until returns nil), ctx ends
// or within passes (then it returns cond's last error).
func Until(ctx context.Context, within time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		tick(ctx)
	}
}

// tick paces a polling loop; it returns early when ctx ends so the loop
// sees its deadline at once.
func tick(ctx context.Context) {
	tm := time.NewTimer(10 * time.Millisecond)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}
