package actors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// Reading frames within the node's limits: a connection with nothing in
// flight that sends nothing for ConnectionsMaxIdle is closed (Kafka's
// connections.max.idle.ms); a frame, once its first byte arrived, must
// arrive whole within RequestFrameTimeout (slowloris); and every frame's
// bytes are reserved in the node's request budget (memBudget) until it
// is answered.

var (
	errIdle    = errors.New("idle for longer than connections_max_idle")
	errStalled = errors.New("request frame not complete within request_frame_timeout")
)

// bodyStep is the first allocation for a frame's body; it doubles as the
// bytes arrive, up to the size the frame declared.
const bodyStep = 64 << 10

// readFrame reads the next request frame's body.
func (c *conn) readFrame() ([]byte, error) {
	var size [4]byte
	c.idleDeadline(false)
	if _, err := io.ReadFull(c.nc, size[:1]); err != nil {
		return nil, timeoutAs(err, errIdle)
	}
	c.deadlineMu.Lock()
	c.midFrame = true
	c.frameDeadline()
	c.deadlineMu.Unlock()
	defer func() {
		c.deadlineMu.Lock()
		c.midFrame = false
		c.deadlineMu.Unlock()
	}()
	if _, err := io.ReadFull(c.nc, size[1:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, timeoutAs(err, errStalled)
	}
	n := int64(int32(binary.BigEndian.Uint32(size[:])))
	if n < 0 || n > int64(protocol.MaxRequestSize) || n > c.b.reqMem.limit {
		return nil, fmt.Errorf("frame of %d bytes (max %d, request memory %d): %w", n, protocol.MaxRequestSize, c.b.reqMem.limit, protocol.ErrFrameSize)
	}
	// No read while the budget is spent: the client's sends back up in
	// TCP. The frame's deadline starts again once there is room.
	if !c.b.reqMem.reserve(n, c.w.stopped) {
		return nil, io.EOF
	}
	c.held.Add(n)
	c.frameDeadline()
	body, err := readBody(c.nc, int(n))
	return body, timeoutAs(err, errStalled)
}

// idleDeadline sets the read deadline of a reader waiting for a frame:
// connections_max_idle from now when nothing is in flight, none otherwise
// (a client waiting for answers is not idle). The reader holds a slot for
// the frame it waits for, so one slot taken means none in flight. The
// actor calls it too (answered) when its last answer went out, unless a
// frame is being read, whose own deadline stands.
func (c *conn) idleDeadline(answered bool) {
	idle := c.b.cfg.ConnectionsMaxIdle
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	switch {
	case answered && (c.midFrame || idle <= 0 || len(c.slots) > 1):
	case idle > 0 && len(c.slots) <= 1:
		_ = c.nc.SetReadDeadline(time.Now().Add(idle))
	default:
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

func (c *conn) frameDeadline() {
	if t := c.b.cfg.RequestFrameTimeout; t > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(t))
	}
}

// readBody reads size bytes, allocating as they arrive.
func readBody(r io.Reader, size int) ([]byte, error) {
	buf := make([]byte, 0, min(size, bodyStep))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(size, 2*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && len(buf) < size {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the size promised more
			}
			return nil, err
		}
	}
	return buf, nil
}

// timeoutAs names a read deadline that passed.
func timeoutAs(err, as error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return as
	}
	return err
}

// releaseFrame returns the budget of the oldest frame still held, which
// complete has just answered (frames are answered in order).
func (c *conn) releaseFrame() {
	if len(c.sizes) == 0 {
		return
	}
	n := c.sizes[0]
	c.sizes = c.sizes[1:]
	c.held.Add(-n)
	c.b.reqMem.release(n)
}

// finishSide is called once by the reader when it ends and once by the
// actor when it stops; the second returns whatever the connection still
// holds of the budget (frames read and never answered).
func (c *conn) finishSide() {
	if c.sides.Add(1) == 2 {
		c.b.reqMem.release(c.held.Swap(0))
	}
}
