package protocol

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// splitFrame checks the size prefix and correlation id of one response frame
// and returns what follows them.
func splitFrame(t *testing.T, frame []byte, correlationID int32) []byte {
	t.Helper()
	if len(frame) < 8 {
		t.Fatalf("frame of %d bytes", len(frame))
	}
	if size := binary.BigEndian.Uint32(frame); int(size) != len(frame)-4 {
		t.Fatalf("size prefix %d, frame has %d bytes after it", size, len(frame)-4)
	}
	if got := int32(binary.BigEndian.Uint32(frame[4:])); got != correlationID {
		t.Fatalf("correlation id %d, want %d", got, correlationID)
	}
	return frame[8:]
}

func TestAppendResponseNonFlexible(t *testing.T) {
	resp := kmsg.NewPtrProduceResponse()
	topic := kmsg.NewProduceResponseTopic()
	topic.Topic = "orders"
	part := kmsg.NewProduceResponseTopicPartition()
	part.BaseOffset = 77
	topic.Partitions = append(topic.Partitions, part)
	resp.Topics = append(resp.Topics, topic)

	prefix := []byte("earlier response")
	out := AppendResponse(append([]byte(nil), prefix...), RequestHeader{Key: 0, Version: 7, CorrelationID: 11}, resp)
	if !bytes.HasPrefix(out, prefix) {
		t.Fatal("dst overwritten")
	}
	body := splitFrame(t, out[len(prefix):], 11)
	if resp.Version != 7 {
		t.Fatalf("response version %d, want 7", resp.Version)
	}
	if !bytes.Equal(body, resp.AppendTo(nil)) {
		t.Fatal("body is not the v7 encoding (a header tag byte slipped in?)")
	}
}

func TestAppendResponseFlexible(t *testing.T) {
	resp := kmsg.NewPtrMetadataResponse()
	resp.ClusterID = kmsg.StringPtr("c1")
	out := AppendResponse(nil, RequestHeader{Key: 3, Version: 12, CorrelationID: -3}, resp)
	rest := splitFrame(t, out, -3)
	if rest[0] != 0 {
		t.Fatalf("header tagged fields byte = %d, want 0", rest[0])
	}
	got := kmsg.NewPtrMetadataResponse()
	got.Version = 12
	if err := got.ReadFrom(rest[1:]); err != nil || *got.ClusterID != "c1" {
		t.Fatalf("decode: %v", err)
	}
}

func TestAppendResponseApiVersionsFlexibleHasNoHeaderTags(t *testing.T) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ApiKeys = ApiVersionsKeys()
	out := AppendResponse(nil, RequestHeader{Key: 18, Version: 3, CorrelationID: 1}, resp)
	body := splitFrame(t, out, 1)
	// The v3 body starts with the int16 error code; a tag byte would shift it.
	if !bytes.Equal(body, resp.AppendTo(nil)) {
		t.Fatal("ApiVersions v3 response carries header tagged fields")
	}
	got := kmsg.NewPtrApiVersionsResponse()
	got.Version = 3
	if err := got.ReadFrom(body); err != nil || len(got.ApiKeys) != len(apiTable) {
		t.Fatalf("decode: %v, %d keys", err, len(got.ApiKeys))
	}
}

func TestAppendApiVersionsUnsupported(t *testing.T) {
	body := splitFrame(t, AppendApiVersionsUnsupported(nil, 99), 99)
	got := kmsg.NewPtrApiVersionsResponse()
	got.Version = 0
	if err := got.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if got.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want %d", got.ErrorCode, kerr.UnsupportedVersion.Code)
	}
	want := ApiVersionsKeys()
	if len(got.ApiKeys) != len(want) {
		t.Fatalf("%d keys, want %d", len(got.ApiKeys), len(want))
	}
	for i := range want {
		g, w := got.ApiKeys[i], want[i]
		if g.ApiKey != w.ApiKey || g.MinVersion != w.MinVersion || g.MaxVersion != w.MaxVersion {
			t.Fatalf("key %d: got %+v, want %+v", i, g, w)
		}
	}
	// v0 is exactly: error code, array length, 6 bytes per key. Nothing more.
	if len(body) != 2+4+6*len(want) {
		t.Fatalf("body of %d bytes is not the v0 format", len(body))
	}
}
