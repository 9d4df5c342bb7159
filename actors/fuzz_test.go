package actors

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// FuzzBrokerFrames sends each input, as one request frame, to a running
// node over a socket, and then checks that the node still answers
// ApiVersions: a hostile frame gets an error answer or a closed
// connection, never a crash or a hang. Seeded with a request of every
// API key at its lowest and highest version. make test runs it briefly;
// for longer: go test -run '^$' -fuzz FuzzBrokerFrames -fuzztime 5m ./actors/
func FuzzBrokerFrames(f *testing.F) {
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, k := range protocol.ApiVersionsKeys() {
		for _, v := range []int16{k.MinVersion, k.MaxVersion} {
			req := kmsg.RequestForKey(k.ApiKey)
			if req == nil {
				continue
			}
			req.SetVersion(v)
			f.Add(fm.AppendRequest(nil, req, 7)[4:])
		}
	}
	b := startTestBroker(f, f.TempDir())
	f.Cleanup(func() { b.Close() })
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		// Some requests wait by design (a JoinGroup for its rebalance, a
		// Fetch for data): the node's health is checked after, so an
		// answer is not waited for long.
		_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		msg := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
		if _, err := c.Write(append(msg, frame...)); err == nil {
			// An answer or a close; which one is the request's business.
			var size [4]byte
			if _, err := io.ReadFull(c, size[:]); err == nil {
				_, _ = io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:])))
			}
		}
		c.Close()
		if err := apiVersionsAnswer(b.Addr()); err != nil {
			t.Fatalf("after a %d-byte frame the node no longer answers: %v", len(frame), err)
		}
	})
}

// apiVersionsAnswer asks addr for ApiVersions v3 on a new connection.
func apiVersionsAnswer(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "fuzz", "1"
	if _, err := c.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err = io.ReadFull(c, body)
	return err
}
