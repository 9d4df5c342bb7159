// Package loopback hands tests free loopback addresses, never the same
// one twice in a test process: the kernel may give a port it just freed
// out again, and one cluster's kafka, raft and admin addresses must
// differ. It imports nothing of the project, so every package's tests can
// use it.
//
// The ports are picked below the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), where it never takes a port
// for the local end of an outgoing connection, nor for a listener on
// port 0: a port handed out here, closed, and bound again moments later
// by a broker (often a child process) cannot have been taken meanwhile by
// some client's socket, which with kernel-chosen ports happened (a node's
// raft listen failing with "address already in use").
package loopback

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	given = map[string]bool{}
)

// lowest is the first port tried: above the well-known and most
// registered service ports.
const lowest = 10000

// Addr returns a free 127.0.0.1:PORT that no earlier call returned.
func Addr(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	top := ephemeralStart()
	for tries := 0; tries < 10000; tries++ {
		var addr string
		if top > lowest {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lowest+rand.IntN(top-lowest)))
		} else {
			addr = "127.0.0.1:0" // no room below the range: let the kernel choose
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken (by another test process, say): try another
		}
		addr = ln.Addr().String()
		ln.Close()
		if !given[addr] {
			given[addr] = true
			return addr
		}
	}
	t.Fatalf("free loopback port: none found below %d", top)
	return ""
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (32768 when it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// Port is Addr's port.
func Port(t testing.TB) int {
	t.Helper()
	addr, err := net.ResolveTCPAddr("tcp", Addr(t))
	if err != nil {
		t.Fatalf("free loopback port: %v", err)
	}
	return addr.Port
}
