package testkit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/testkit/wait"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// rawConn is one Kafka connection driven by hand: the checks that need to
// send what no well-behaved client sends (bad frames, pipelined requests,
// chosen versions) use it instead of kgo.
type rawConn struct {
	t    testing.TB
	conn net.Conn
	fmtr *kmsg.RequestFormatter
	corr int32
	// brokerMin and brokerMax are the version ranges from the broker's
	// ApiVersions v0 answer, by API key.
	brokerMin, brokerMax map[int16]int16
}

const rawClientID = "testkit-raw"

// versionCaps keeps raw requests on versions that name topics: Produce
// v13 and Fetch v13 address topics by id, which these checks don't track.
var versionCaps = map[int16]int16{0: 12, 1: 12}

// dialRaw connects to addr and learns the broker's version ranges.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawConn{
		t:         t,
		conn:      conn,
		fmtr:      kmsg.NewRequestFormatter(kmsg.FormatterClientID(rawClientID)),
		brokerMin: map[int16]int16{},
		brokerMax: map[int16]int16{},
	}
	req := kmsg.NewPtrApiVersionsRequest()
	resp := c.roundTripAt(req, 0).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions v0: error code %d", resp.ErrorCode)
	}
	for _, k := range resp.ApiKeys {
		c.brokerMin[k.ApiKey], c.brokerMax[k.ApiKey] = k.MinVersion, k.MaxVersion
	}
	return c
}

// version is the newest version of key that both the broker and kmsg
// speak, within versionCaps.
func (c *rawConn) version(key int16) int16 {
	c.t.Helper()
	bmax, ok := c.brokerMax[key]
	if !ok {
		c.t.Fatalf("broker does not advertise API key %d", key)
	}
	v := kmsg.RequestForKey(key).MaxVersion()
	if bmax < v {
		v = bmax
	}
	if cp, ok := versionCaps[key]; ok && cp < v {
		v = cp
	}
	if v < c.brokerMin[key] {
		c.t.Fatalf("API key %d: no common version (broker %d..%d, testkit up to %d)", key, c.brokerMin[key], bmax, v)
	}
	return v
}

func (c *rawConn) sendAt(req kmsg.Request, version int16) int32 {
	c.t.Helper()
	req.SetVersion(version)
	c.corr++
	c.write(c.fmtr.AppendRequest(nil, req, c.corr))
	return c.corr
}

// frame appends one request to buf without writing it, for pipelining.
func (c *rawConn) frame(buf []byte, req kmsg.Request) ([]byte, int32) {
	c.t.Helper()
	req.SetVersion(c.version(req.Key()))
	c.corr++
	// AppendRequest writes the length at dst[0], so it only frames
	// correctly into an empty slice.
	return append(buf, c.fmtr.AppendRequest(nil, req, c.corr)...), c.corr
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write %d bytes: %v", len(b), err)
	}
}

// recv reads one response into resp (whose version must be set) and
// returns its correlation id.
func (c *rawConn) recv(resp kmsg.Response) int32 {
	c.t.Helper()
	body, err := c.readFrame(10 * time.Second)
	if err != nil {
		c.t.Fatalf("read %T: %v", resp, err)
	}
	corr := int32(binary.BigEndian.Uint32(body))
	body = body[4:]
	// Flexible responses carry a tag buffer in their header, except
	// ApiVersions: a client must parse it before it knows the broker's
	// versions.
	if resp.IsFlexible() && resp.Key() != 18 {
		r := kbin.Reader{Src: body}
		for n := r.Uvarint(); n > 0; n-- {
			r.Uvarint()
			r.Span(int(r.Uvarint()))
		}
		if !r.Ok() {
			c.t.Fatalf("%T: truncated response header tags", resp)
		}
		body = r.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %T v%d: %v", resp, resp.GetVersion(), err)
	}
	return corr
}

func (c *rawConn) readFrame(within time.Duration) ([]byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(within))
	var size [4]byte
	if _, err := io.ReadFull(c.conn, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.conn, body); err != nil {
		return nil, err
	}
	return body, nil
}

func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	return c.roundTripAt(req, c.version(req.Key()))
}

func (c *rawConn) roundTripAt(req kmsg.Request, version int16) kmsg.Response {
	c.t.Helper()
	corr := c.sendAt(req, version)
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if got := c.recv(resp); got != corr {
		c.t.Fatalf("%T: correlation id %d, want %d", resp, got, corr)
	}
	return resp
}

// expectClosed asserts that the broker closes the connection within the
// given time without answering anything.
func (c *rawConn) expectClosed(within time.Duration) {
	c.t.Helper()
	start := time.Now()
	c.conn.SetReadDeadline(start.Add(within))
	buf := make([]byte, 512)
	n, err := c.conn.Read(buf)
	switch {
	case n > 0:
		c.t.Fatalf("expected the connection closed, got %d bytes: %x", n, buf[:n])
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.t.Fatalf("connection still open %v later, expected the broker to close it", within)
	case err == nil:
		c.t.Fatalf("expected the connection closed, read returned nothing and no error")
	}
	// io.EOF or a reset: closed, which is what we want.
	c.t.Logf("connection closed after %v (%v)", time.Since(start).Round(time.Millisecond), err)
}

// headerOnly is the frame prefix (length, header) of a request with key
// and version, for bodies written by hand.
func (c *rawConn) headerOnly(key, version int16) (frame []byte, corr int32) {
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	c.corr++
	// Length (4) + key, version (4) + correlation id (4) + client id
	// (2 + len) + tag buffer (1) when flexible.
	n := 4 + 4 + 4 + 2 + len(rawClientID)
	if req.IsFlexible() {
		n++
	}
	return c.fmtr.AppendRequest(nil, req, c.corr)[:n], c.corr
}

// withBody completes a headerOnly prefix with body and its true length.
func withBody(prefix, body []byte) []byte {
	f := append(append([]byte(nil), prefix...), body...)
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	return f
}

// rawBatch encodes an uncompressed magic-2 record batch with one record per
// value, all stamped ts, with the CRC32C a broker verifies. pid -1 makes a
// batch of a non-idempotent producer.
func rawBatch(pid int64, epoch int16, seq int32, ts int64, values ...[]byte) []byte {
	recs := make([]protocol.Record, len(values))
	for i, v := range values {
		recs[i] = protocol.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: v}
	}
	return protocol.BuildProducerBatch(pid, epoch, seq, recs, ts)
}

func produceRequest(topic string, partition int32, acks int16, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 15000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// producePartition is the one partition's answer in a single-partition
// Produce response.
func producePartition(t testing.TB, resp *kmsg.ProduceResponse) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("Produce response: want one topic with one partition, got %+v", resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

func values(prefix string, n int) [][]byte {
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = []byte(fmt.Sprintf("%s-%d", prefix, i))
	}
	return vs
}

// produceRetrying sends a one-partition Produce until the partition stops
// answering that its leader is not ready (a fresh topic's raft group may
// still be electing), as every real client does, within a deadline.
func produceRetrying(t testing.TB, send func() kmsg.ProduceResponseTopicPartition) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	var p kmsg.ProduceResponseTopicPartition
	wait.For(t, 15*time.Second, func() error {
		p = send()
		if p.ErrorCode == kerr.NotLeaderForPartition.Code || p.ErrorCode == kerr.LeaderNotAvailable.Code {
			return fmt.Errorf("partition still answers %v", kerr.ErrorForCode(p.ErrorCode))
		}
		return nil
	})
	return p
}
