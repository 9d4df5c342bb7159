// Package loopback hands tests free loopback addresses, never the same
// one twice in a test process: the kernel may give a port it just freed
// out again, and one cluster's kafka, raft and admin addresses must
// differ. It imports nothing of the project, so every package's tests can
// use it.
package loopback

import (
	"net"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	given = map[string]bool{}
)

// Addr returns a free 127.0.0.1:PORT that no earlier call returned.
func Addr(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free loopback port: %v", err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !given[addr] {
			given[addr] = true
			return addr
		}
	}
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
