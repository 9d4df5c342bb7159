package testkit

import (
	"net"
	"testing"
	"time"
)

// TestProcessRestartBusyPort: a killed broker process whose port another
// socket took meanwhile (as a client's ephemeral port can, with other
// packages' tests running) is launched again until the port is free,
// rather than failing the restart.
func TestProcessRestartBusyPort(t *testing.T) {
	SkipUnlessChronik(t, "restarts the broker binary")
	p := StartProcess(t, t.TempDir())
	p.Kill()
	ln, err := net.Listen("tcp", p.Addr())
	if err != nil {
		t.Fatalf("take the killed broker's port %s: %v", p.Addr(), err)
	}
	time.AfterFunc(700*time.Millisecond, func() { ln.Close() })
	p.Restart()
	if p.starts < 3 {
		t.Fatalf("restarted after %d starts, want at least one refused on the busy port", p.starts)
	}
	if err := probeAPIVersions(p.Addr()); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
}
