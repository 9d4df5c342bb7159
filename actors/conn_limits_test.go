package actors

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronik-actor/chronik-actor/cluster"
	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

func startLimitedBroker(t *testing.T, tune func(*cluster.Config)) *Broker {
	t.Helper()
	cfg := cluster.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.KafkaAddr = "127.0.0.1:0"
	tune(&cfg)
	b, err := StartBroker(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// closedWithin reads from c until the node closes it, failing if that
// takes longer than d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	_, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Fatalf("not closed by the node within %v: %v", d, err)
	}
	return time.Since(start)
}

// A connection with nothing in flight that sends nothing is closed after
// connections_max_idle; one that answered requests before, too.
func TestIdleConnectionClosed(t *testing.T) {
	b := startLimitedBroker(t, func(c *cluster.Config) { c.ConnectionsMaxIdle = 300 * time.Millisecond })
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if took := closedWithin(t, c, 5*time.Second); took < 250*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", took)
	}
	// Busy first, idle after.
	c2, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for range 3 {
		if err := apiVersionsOn(c2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // under the idle timeout: kept
	}
	closedWithin(t, c2, 5*time.Second)
}

// A frame that stalls once begun, in its length or its body, is closed
// after request_frame_timeout.
func TestStalledFrameClosed(t *testing.T) {
	b := startLimitedBroker(t, func(c *cluster.Config) { c.RequestFrameTimeout = 300 * time.Millisecond })
	for _, partial := range [][]byte{
		{0, 0}, // half a length
		append(binary.BigEndian.AppendUint32(nil, 1000), make([]byte, 10)...), // 10 of 1,000 bytes
	} {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(partial); err != nil {
			t.Fatal(err)
		}
		closedWithin(t, c, 5*time.Second)
		c.Close()
	}
	wait.For(t, 5*time.Second, func() error {
		if n := b.reqMem.inUse(); n != 0 {
			return fmt.Errorf("%d bytes of the request budget still held", n)
		}
		return nil
	})
}

// With the budget held by a frame that declares much and sends little,
// a frame that does not fit waits unread, and goes on once the first is
// gone; a frame larger than the budget is refused.
func TestRequestBudgetBackpressure(t *testing.T) {
	b := startLimitedBroker(t, func(c *cluster.Config) { c.RequestMemoryBytes = 1 << 20 })
	hog, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hog.Write(append(binary.BigEndian.AppendUint32(nil, 900<<10), 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, func() error {
		if n := b.reqMem.inUse(); n != 900<<10 {
			return fmt.Errorf("budget in use %d, want the hog's %d", n, 900<<10)
		}
		return nil
	})
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	answered := make(chan error, 1)
	go func() { answered <- apiVersionsOn(c) }()
	// ApiVersions (about 60 bytes) fits beside the hog: answered.
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a small request waited although the budget had room")
	}
	// 200 KiB does not fit: it waits until the hog goes.
	big, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if _, err := big.Write(binary.BigEndian.AppendUint32(nil, 200<<10)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, func() error {
		if b.reqMem.waits.Load() == 0 {
			return fmt.Errorf("the 200 KiB frame did not wait")
		}
		return nil
	})
	if n := b.reqMem.inUse(); n != 900<<10 {
		t.Fatalf("budget in use %d while the second frame waits", n)
	}
	hog.Close()
	wait.For(t, 5*time.Second, func() error {
		if n := b.reqMem.inUse(); n != 200<<10 {
			return fmt.Errorf("budget in use %d after the hog left, want the waiting frame's %d", n, 200<<10)
		}
		return nil
	})
	// Larger than the whole budget: refused, the connection closed.
	over, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if _, err := over.Write(binary.BigEndian.AppendUint32(nil, 2<<20)); err != nil {
		t.Fatal(err)
	}
	closedWithin(t, over, 5*time.Second)
}

// apiVersionsOn asks ApiVersions v3 on c and reads the answer.
func apiVersionsOn(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	req := binary.BigEndian.AppendUint16(nil, 18) // ApiVersions
	req = binary.BigEndian.AppendUint16(req, 0)
	req = binary.BigEndian.AppendUint32(req, 1)
	req = binary.BigEndian.AppendUint16(req, 0xffff) // null client id
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(req))), req...)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:])))
	return err
}
