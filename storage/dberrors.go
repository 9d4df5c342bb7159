package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// Errors of Pebble's own background work (flushes, compactions). Pebble
// retries that work without end; when the disk is full, read-only or
// failing, the retries never succeed and each one logs: at start, Open
// never returns (a node restarted on a full disk spun at more than a core
// and logged thousands of lines a second). A disk error there is handled
// as a failed commit is: fail-stop, once, with the path and the cause.
// Other background errors are logged at most once a second, with a count.

// diskErrors are the causes that retrying will not cure.
var diskErrors = []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, syscall.EACCES, syscall.EPERM}

// IsDiskError reports whether err comes from a disk that is full,
// read-only, failing or not ours to write.
func IsDiskError(err error) bool {
	for _, e := range diskErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (d *DB) backgroundError(err error) {
	if IsDiskError(err) {
		if d.failed.CompareAndSwap(nil, &err) {
			d.failStop("pebble background write", err)
		}
		return
	}
	d.bgLog.log(err)
}

// rateLog logs an error at most once per interval, saying how many were
// left out since the last line.
type rateLog struct {
	l        *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (r *rateLog) log(err error) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < r.interval {
		r.dropped++
		r.mu.Unlock()
		return
	}
	dropped := r.dropped
	r.last, r.dropped = now, 0
	r.mu.Unlock()
	if dropped > 0 {
		r.l.Error(fmt.Sprintf("background error: %v", err), "component", "pebble", "repeats_not_logged", dropped)
		return
	}
	r.l.Error(fmt.Sprintf("background error: %v", err), "component", "pebble")
}
