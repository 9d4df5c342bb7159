package testkit

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBadInput sends, over raw TCP, what a broken or hostile client might,
// and asserts the broker's answer: a Kafka error code where the Java
// broker gives one, a closed connection where the frame cannot be
// understood. After each case a fresh kgo client must still produce and
// consume, so no bad input hurts anyone else.
func TestBadInput(t *testing.T) {
	tg := StartTarget(t)
	const (
		alive = "bad-input-alive" // where assertServes writes
		topic = "bad-input"
		small = "bad-input-small" // max.message.bytes=1024
	)
	CreateTopic(t, tg.Addr(), alive, 1, nil)
	CreateTopic(t, tg.Addr(), topic, 1, nil)
	CreateTopic(t, tg.Addr(), small, 1, map[string]*string{"max.message.bytes": kmsg.StringPtr("1024")})

	// closeWithin bounds "at once": the broker must not wait for bytes
	// that will never come.
	const closeWithin = 3 * time.Second

	produceCode := func(t *testing.T, c *rawConn, topic string, partition int32, batch []byte) int16 {
		t.Helper()
		return produceRetrying(t, func() kmsg.ProduceResponseTopicPartition {
			resp := c.roundTrip(produceRequest(topic, partition, -1, batch)).(*kmsg.ProduceResponse)
			return producePartition(t, resp)
		}).ErrorCode
	}
	expectCode := func(t *testing.T, what string, got int16, want *kerr.Error) {
		t.Helper()
		if got != want.Code {
			t.Fatalf("%s: got error %d (%v), want %d (%s)", what, got, kerr.ErrorForCode(got), want.Code, want.Message)
		}
	}
	createCode := func(t *testing.T, c *rawConn, name string, rf int16) int16 {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 15000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = name
		rt.NumPartitions = 1
		rt.ReplicationFactor = rf
		req.Topics = append(req.Topics, rt)
		resp := c.roundTrip(req).(*kmsg.CreateTopicsResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("CreateTopics: %d topics in the answer, want 1", len(resp.Topics))
		}
		return resp.Topics[0].ErrorCode
	}

	cases := []struct {
		name string
		// kfakeDiffers marks cases where kfake is known to answer
		// otherwise than the Java broker; they run against chronik-actor
		// only.
		kfakeDiffers string
		run          func(t *testing.T, c *rawConn)
	}{
		{"unknown API key", "kfake dereferences nil for an unknown key and panics", func(t *testing.T, c *rawConn) {
			prefix, _ := c.headerOnly(18, 0) // a valid v1 header...
			binary.BigEndian.PutUint16(prefix[4:], 1000)
			c.write(withBody(prefix, nil)) // ...naming key 1000
			c.expectClosed(closeWithin)
		}},
		{"ApiVersions v99", "", func(t *testing.T, c *rawConn) {
			req := kmsg.NewPtrApiVersionsRequest()
			req.ClientSoftwareName, req.ClientSoftwareVersion = "testkit", "1"
			corr := c.sendAt(req, 99)
			// The answer is a v0 body: the client cannot know which
			// newer layout the broker would use.
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.Version = 0
			if got := c.recv(resp); got != corr {
				t.Fatalf("correlation id %d, want %d", got, corr)
			}
			expectCode(t, "ApiVersions v99", resp.ErrorCode, kerr.UnsupportedVersion)
			var apiVersions *kmsg.ApiVersionsResponseApiKey
			for i, k := range resp.ApiKeys {
				if k.ApiKey == 18 {
					apiVersions = &resp.ApiKeys[i]
				}
			}
			if apiVersions == nil || apiVersions.MinVersion != 0 || apiVersions.MaxVersion < 3 {
				t.Fatalf("UNSUPPORTED_VERSION answer must list ApiVersions 0..3+, got %+v", resp.ApiKeys)
			}
		}},
		{"Metadata v99", "", func(t *testing.T, c *rawConn) {
			c.sendAt(kmsg.NewPtrMetadataRequest(), 99)
			c.expectClosed(closeWithin)
		}},
		{"truncated frame", "", func(t *testing.T, c *rawConn) {
			// Announce 100 bytes, send the first 10 of a real header, and
			// half-close: the rest can never come.
			prefix, _ := c.headerOnly(3, c.version(3))
			f := make([]byte, 14)
			binary.BigEndian.PutUint32(f, 100)
			copy(f[4:], prefix[4:])
			c.write(f)
			if err := c.conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Fatalf("half-close: %v", err)
			}
			c.expectClosed(closeWithin)
		}},
		{"garbage Produce body", "", func(t *testing.T, c *rawConn) {
			// 0xff 0xff 0xff fails either layout: an unterminated varint
			// (flexible) or a null transactional id followed by half of
			// acks.
			prefix, _ := c.headerOnly(0, c.version(0))
			c.write(withBody(prefix, []byte{0xff, 0xff, 0xff}))
			c.expectClosed(closeWithin)
		}},
		{"negative frame length", "kfake reads the length as unsigned and waits for the body", func(t *testing.T, c *rawConn) {
			c.write([]byte{0xff, 0xff, 0xff, 0xff})
			c.expectClosed(closeWithin)
		}},
		{"frame over 100 MiB", "kfake has no frame size limit and waits for the body", func(t *testing.T, c *rawConn) {
			prefix, _ := c.headerOnly(3, c.version(3))
			binary.BigEndian.PutUint32(prefix, 200<<20)
			c.write(prefix) // a plausible header, then nothing
			c.expectClosed(closeWithin)
		}},
		{"corrupted CRC", "", func(t *testing.T, c *rawConn) {
			batch := rawBatch(-1, -1, -1, time.Now().UnixMilli(), values("crc", 3)...)
			batch[17] ^= 0xff
			expectCode(t, "Produce with a bad CRC", produceCode(t, c, topic, 0, batch), kerr.CorruptMessage)
		}},
		{"batch over max.message.bytes", "", func(t *testing.T, c *rawConn) {
			ok := rawBatch(-1, -1, -1, time.Now().UnixMilli(), []byte("fits"))
			if code := produceCode(t, c, small, 0, ok); code != 0 {
				t.Fatalf("Produce of a small batch under max.message.bytes=1024: %v", kerr.ErrorForCode(code))
			}
			big := rawBatch(-1, -1, -1, time.Now().UnixMilli(), bytes.Repeat([]byte("x"), 2000))
			expectCode(t, "Produce of 2000 bytes under max.message.bytes=1024", produceCode(t, c, small, 0, big), kerr.MessageTooLarge)
		}},
		{"unknown topic", "", func(t *testing.T, c *rawConn) {
			batch := rawBatch(-1, -1, -1, time.Now().UnixMilli(), values("nowhere", 1)...)
			expectCode(t, "Produce to a topic never created", produceCode(t, c, "bad-input-no-such-topic", 0, batch), kerr.UnknownTopicOrPartition)
		}},
		{"unknown partition", "", func(t *testing.T, c *rawConn) {
			batch := rawBatch(-1, -1, -1, time.Now().UnixMilli(), values("nowhere", 1)...)
			expectCode(t, "Produce to partition 7 of a 1-partition topic", produceCode(t, c, topic, 7, batch), kerr.UnknownTopicOrPartition)
		}},
		{"replication factor 3 on one node", "", func(t *testing.T, c *rawConn) {
			expectCode(t, "CreateTopics with replication factor 3", createCode(t, c, "bad-input-rf3", 3), kerr.InvalidReplicationFactor)
		}},
		{"invalid topic names", "kfake does not check topic name characters or length", func(t *testing.T, c *rawConn) {
			for _, name := range []string{"bad/name", "..", strings.Repeat("x", 250)} {
				expectCode(t, "CreateTopics "+name[:min(len(name), 12)], createCode(t, c, name, 1), kerr.InvalidTopicException)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.kfakeDiffers != "" {
				tg.SkipOnKfake(t, tc.kfakeDiffers)
			}
			tc.run(t, dialRaw(t, tg.Addr()))
			assertServes(t, tg.Addr(), alive)
		})
	}
}
