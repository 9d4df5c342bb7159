package main

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// transactions produces in transactions of n records, one after the
// other, as an exactly-once pipeline does: begin, produce n, flush,
// commit. A record counts when its transaction's commit is acknowledged,
// and its latency runs from when it was produced to then: that is when a
// read_committed consumer may see it.
func (c *benchClient) transactions(ctx context.Context, n int) {
	sent := make([]time.Time, n)
	for ctx.Err() == nil {
		if err := c.cl.BeginTransaction(); err != nil {
			c.failed(err)
			return
		}
		var failed atomic.Pointer[error]
		for i := range sent {
			sent[i] = time.Now()
			c.cl.Produce(ctx, &kgo.Record{Value: c.value()}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			})
		}
		err := c.cl.Flush(ctx)
		if p := failed.Load(); err == nil && p != nil {
			err = *p
		}
		commit := err == nil
		if eerr := c.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err == nil {
			err = eerr
		}
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return // the end of the run, not a broker error
		case err != nil:
			c.failed(err)
			continue
		}
		for _, at := range sent {
			c.done(at, &kgo.Record{Value: c.pool[:c.size]}, nil) // only its length counts
		}
	}
}

// failed counts one failed transaction, inside the window.
func (c *benchClient) failed(err error) {
	c.done(time.Now(), nil, err)
}
