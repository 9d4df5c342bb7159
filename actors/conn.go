package actors

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
	"github.com/chronik-actor/chronik-actor/raftactor"
)

// maxInFlight caps the requests of one connection that are read but not
// yet answered. It is the back-pressure of the whole node: the reader
// stops reading, so mailboxes downstream stay bounded.
const maxInFlight = 64

// conn is the actor of one client connection. A reader goroutine cuts
// frames, the actor decodes and dispatches them, and responses are
// released strictly in request order to a writer goroutine.
type conn struct {
	b   *Broker
	nc  net.Conn
	log *slog.Logger

	nextSeq  uint64            // sequence of the next request read
	writeSeq uint64            // sequence of the next response to write
	done     map[uint64][]byte // finished responses waiting for their turn; nil = no response
	slots    chan struct{}     // in-flight requests, shared with the reader
	w        *connWriter
	closed   bool

	// The request budget this connection holds (conn_read.go): held is
	// every byte reserved and not released, sizes the frames handled and
	// not answered, in order; sides counts the reader and the actor done.
	held  atomic.Int64
	sizes []int64
	sides atomic.Int32
	// The read deadline: idle between frames, the frame's own within one.
	deadlineMu sync.Mutex
	midFrame   bool
}

// Messages to the connection actor.
type (
	frameMsg  struct{ body []byte }
	readErr   struct{ err error }
	asyncDone struct {
		seq   uint64
		frame []byte // nil: the request gets no response
	}
)

// request is one decoded request with its place in the response order.
type request struct {
	seq uint64
	hdr protocol.RequestHeader
	req kmsg.Request
}

func startConn(b *Broker, nc net.Conn) {
	c := &conn{
		b:     b,
		nc:    nc,
		log:   b.log.With("remote", nc.RemoteAddr().String()),
		done:  make(map[uint64][]byte),
		slots: make(chan struct{}, maxInFlight),
		w:     newConnWriter(nc, b.gate),
	}
	props := actor.PropsFromProducer(func() actor.Actor { return c },
		// Bounded at the source: at most maxInFlight frames are read ahead,
		// and each brings at most one reply per partition it names. A
		// bounded queue would block the replicas that reply (see
		// raftactor.Replica.Props).
		actor.WithMailbox(actor.Unbounded()),
		actor.WithGuardian(stopOnPanic))
	props = b.interceptable(props)
	b.openConns.Store(c, struct{}{})
	pid := b.sys.Root.Spawn(props)
	// The pid is kept for testkit's ConnPIDs; unless the connection
	// closed meanwhile.
	b.openConns.CompareAndSwap(c, struct{}{}, pid)
}

var stopOnPanic = actor.NewOneForOneStrategy(0, 10*time.Second, func(reason any) actor.Directive {
	return actor.StopDirective
})

func (c *conn) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		go c.read(ctx.ActorSystem().Root, ctx.Self())
		go c.w.run()
	case *frameMsg:
		c.handleFrame(ctx, m.body)
	case *raftactor.Result:
		// Replies to proposals carry their continuation; it runs here, on
		// the connection's goroutine.
		m.Run()
	case *asyncDone:
		c.complete(m.seq, m.frame)
	case *deferred:
		m.fn()
	case *readErr:
		switch {
		case errors.Is(m.err, errIdle), errors.Is(m.err, errStalled):
			c.log.Debug("closing connection", "err", m.err)
		case !errors.Is(m.err, io.EOF) && !errors.Is(m.err, net.ErrClosed):
			c.log.Info("closing connection", "err", m.err)
		}
		ctx.Stop(ctx.Self())
	case *actor.Stopping:
		c.closed = true
		c.nc.Close()
		c.w.close()
		c.b.conns.Add(-1)
		c.b.openConns.Delete(c)
		c.finishSide()
	case *actor.Restarting:
		c.nc.Close()
	}
}

// read cuts frames off the socket. It takes an in-flight slot before each
// read, so a client that pipelines faster than the node answers is
// throttled by TCP.
func (c *conn) read(root *actor.RootContext, self *actor.PID) {
	defer c.finishSide()
	for {
		select {
		case c.slots <- struct{}{}:
		case <-c.w.stopped:
			return
		}
		body, err := c.readFrame()
		if err != nil {
			root.Send(self, &readErr{err: err})
			return
		}
		if !c.b.gate.wait(c.w.stopped) {
			return
		}
		root.Send(self, &frameMsg{body: body})
	}
}

func (c *conn) handleFrame(ctx actor.Context, body []byte) {
	if c.closed {
		return
	}
	c.sizes = append(c.sizes, int64(len(body))) // released when answered
	hdr, req, err := protocol.ParseRequest(body)
	r := &request{seq: c.nextSeq, hdr: hdr, req: req}
	c.nextSeq++
	switch {
	case err == nil:
	case errors.Is(err, protocol.ErrUnsupportedVersion) && hdr.Key == int16(kmsg.ApiVersions):
		// The one request a client may send at a version we don't know:
		// the answer lists our ranges so it can retry lower.
		c.complete(r.seq, protocol.AppendApiVersionsUnsupported(nil, hdr.CorrelationID))
		return
	default:
		// Kafka closes the connection on a request it cannot parse.
		c.log.Info("closing connection: bad request", "api_key", hdr.Key, "api_version", hdr.Version, "err", err)
		ctx.Stop(ctx.Self())
		return
	}
	handle(c, ctx, r)
}

// respond finishes r with resp.
func (c *conn) respond(r *request, resp kmsg.Response) {
	c.complete(r.seq, protocol.AppendResponse(nil, r.hdr, resp))
}

// noResponse finishes r without writing anything (acks=0).
func (c *conn) noResponse(r *request) { c.complete(r.seq, nil) }

// complete records a finished response and writes every response whose
// turn has come, in request order.
func (c *conn) complete(seq uint64, frame []byte) {
	if c.closed {
		return
	}
	c.done[seq] = frame
	var out [][]byte
	for {
		f, ok := c.done[c.writeSeq]
		if !ok {
			break
		}
		delete(c.done, c.writeSeq)
		c.writeSeq++
		<-c.slots
		c.releaseFrame()
		if f != nil {
			out = append(out, f)
		}
	}
	if len(out) > 0 {
		c.w.write(out)
	}
	if seq < c.writeSeq {
		c.idleDeadline(true) // this one is done: maybe the last in flight
	}
}

// async runs fn off the actor (reads of segment files, long polls) and
// completes r with the response it returns.
func (c *conn) async(ctx actor.Context, r *request, fn func() kmsg.Response) {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	go func() {
		defer func() {
			// A bug in a read must not take the node down: this
			// connection closes, the others go on.
			if p := recover(); p != nil {
				c.log.Error("panic serving a request; closing the connection", "api_key", r.hdr.Key, "panic", p)
				root.Send(self, &readErr{err: fmt.Errorf("panic: %v", p)})
			}
		}()
		resp := fn()
		root.Send(self, &asyncDone{seq: r.seq, frame: protocol.AppendResponse(nil, r.hdr, resp)})
	}()
}

// after runs fn on this connection's actor once d has passed (request
// timeouts). Stop the timer once the request is answered: until it fires,
// it keeps fn and all fn holds (the request, its record bytes) alive.
func (c *conn) after(ctx actor.Context, d time.Duration, fn func()) *time.Timer {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	return time.AfterFunc(d, func() { root.Send(self, &deferred{fn: fn}) })
}

type deferred struct{ fn func() }

// connWriter writes responses from its own goroutine, gathering all that
// are ready into one writev.
type connWriter struct {
	nc      net.Conn
	gate    *pauseGate // the node's Pause holds writes back
	mu      sync.Mutex
	queue   [][]byte
	wake    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func newConnWriter(nc net.Conn, gate *pauseGate) *connWriter {
	return &connWriter{nc: nc, gate: gate, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

func (w *connWriter) write(frames [][]byte) {
	w.mu.Lock()
	w.queue = append(w.queue, frames...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *connWriter) close() { w.once.Do(func() { close(w.stopped) }) }

func (w *connWriter) run() {
	for {
		select {
		case <-w.wake:
		case <-w.stopped:
			return
		}
		if !w.gate.wait(w.stopped) {
			return
		}
		w.mu.Lock()
		q := w.queue
		w.queue = nil
		w.mu.Unlock()
		bufs := net.Buffers(q)
		if _, err := bufs.WriteTo(w.nc); err != nil {
			w.nc.Close()
			return
		}
	}
}
