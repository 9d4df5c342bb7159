package scenario

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
)

// Recorder stands in for testing.T outside go test (`chronik-actor
// scenario run`): it records failures, writes logs to Out, and runs
// cleanups when Finish is called. Like testing.T, FailNow (and so Fatal)
// ends the calling goroutine, so run a script with RunRecorded, which
// gives it a goroutine of its own.
type Recorder struct {
	// testing.TB is embedded, nil, only for the interface's unexported
	// method; every exported one is Recorder's own.
	testing.TB
	name string
	Out  io.Writer

	mu       sync.Mutex
	failed   bool
	skipped  bool
	errs     []string
	cleanups []func()
	ctx      context.Context
	cancel   context.CancelFunc
}

// NewRecorder is a Recorder named name logging to out.
func NewRecorder(name string, out io.Writer) *Recorder {
	ctx, cancel := context.WithCancel(context.Background())
	return &Recorder{name: name, Out: out, ctx: ctx, cancel: cancel}
}

// RunRecorded runs f(rec) on a goroutine of its own, as go test runs a
// test, waits for it to end (normally or by FailNow/SkipNow), runs the
// cleanups, and reports whether it passed.
func RunRecorded(rec *Recorder, f func(testing.TB)) (passed bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				rec.Errorf("panic: %v", p)
			}
		}()
		f(rec)
	}()
	<-done
	rec.Finish()
	return !rec.Failed()
}

// Finish runs the cleanups, last registered first.
func (r *Recorder) Finish() {
	r.cancel()
	for {
		r.mu.Lock()
		n := len(r.cleanups)
		if n == 0 {
			r.mu.Unlock()
			return
		}
		f := r.cleanups[n-1]
		r.cleanups = r.cleanups[:n-1]
		r.mu.Unlock()
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.Errorf("cleanup panicked: %v", p)
				}
			}()
			f()
		}()
	}
}

// Errors are the failures recorded, in order.
func (r *Recorder) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// Name implements testing.TB.
func (r *Recorder) Name() string { return r.name }

// Cleanup implements testing.TB.
func (r *Recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// Log implements testing.TB.
func (r *Recorder) Log(args ...any) { fmt.Fprintln(r.Out, fmt.Sprint(args...)) }

// Logf implements testing.TB.
func (r *Recorder) Logf(format string, args ...any) { fmt.Fprintf(r.Out, format+"\n", args...) }

// Error implements testing.TB.
func (r *Recorder) Error(args ...any) { r.record(fmt.Sprint(args...)) }

// Errorf implements testing.TB.
func (r *Recorder) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }

func (r *Recorder) record(msg string) {
	r.mu.Lock()
	r.failed = true
	r.errs = append(r.errs, msg)
	r.mu.Unlock()
	fmt.Fprintln(r.Out, "FAIL: "+msg)
}

// Fail implements testing.TB.
func (r *Recorder) Fail() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
}

// FailNow implements testing.TB: it ends the calling goroutine.
func (r *Recorder) FailNow() {
	r.Fail()
	runtime.Goexit()
}

// Failed implements testing.TB.
func (r *Recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Fatal implements testing.TB.
func (r *Recorder) Fatal(args ...any) {
	r.Error(args...)
	runtime.Goexit()
}

// Fatalf implements testing.TB.
func (r *Recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// Helper implements testing.TB; a Recorder reports no caller lines.
func (r *Recorder) Helper() {}

// Skip implements testing.TB.
func (r *Recorder) Skip(args ...any) {
	r.Log(args...)
	r.SkipNow()
}

// Skipf implements testing.TB.
func (r *Recorder) Skipf(format string, args ...any) {
	r.Logf(format, args...)
	r.SkipNow()
}

// SkipNow implements testing.TB.
func (r *Recorder) SkipNow() {
	r.mu.Lock()
	r.skipped = true
	r.mu.Unlock()
	runtime.Goexit()
}

// Skipped implements testing.TB.
func (r *Recorder) Skipped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.skipped
}

// TempDir implements testing.TB: a new directory, removed by Finish.
func (r *Recorder) TempDir() string {
	dir, err := os.MkdirTemp("", "chronik-scenario-")
	if err != nil {
		r.Fatalf("TempDir: %v", err)
	}
	r.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// ArtifactDir implements testing.TB, as TempDir.
func (r *Recorder) ArtifactDir() string { return r.TempDir() }

// Setenv implements testing.TB; Finish restores the old value.
func (r *Recorder) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	os.Setenv(key, value)
	r.Cleanup(func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	})
}

// Chdir implements testing.TB; Finish goes back.
func (r *Recorder) Chdir(dir string) {
	old, err := os.Getwd()
	if err != nil {
		r.Fatalf("Chdir: %v", err)
	}
	if err := os.Chdir(dir); err != nil {
		r.Fatalf("Chdir: %v", err)
	}
	r.Cleanup(func() { os.Chdir(old) })
}

// Attr implements testing.TB: it is logged.
func (r *Recorder) Attr(key, value string) { r.Logf("=== ATTR %s %s", key, value) }

// Context implements testing.TB: canceled when Finish starts.
func (r *Recorder) Context() context.Context { return r.ctx }

// Output implements testing.TB.
func (r *Recorder) Output() io.Writer { return r.Out }
