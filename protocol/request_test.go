package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// frameOf encodes req as a client would and strips the size prefix, giving
// what ReadFrame returns.
func frameOf(req kmsg.Request, correlationID int32, clientID string) []byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))
	return f.AppendRequest(nil, req, correlationID)[4:]
}

func metadataV12() *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	topic := kmsg.NewMetadataRequestTopic()
	topic.Topic = kmsg.StringPtr("orders")
	req.Topics = append(req.Topics, topic)
	req.AllowAutoTopicCreation = true
	return req
}

func produceV7() *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = -1
	req.TimeoutMillis = 1500
	topic := kmsg.NewProduceRequestTopic()
	topic.Topic = "orders"
	part := kmsg.NewProduceRequestTopicPartition()
	part.Partition = 3
	part.Records = []byte("opaque record bytes")
	topic.Partitions = append(topic.Partitions, part)
	req.Topics = append(req.Topics, topic)
	return req
}

func apiVersionsV3() *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = "franz-go"
	req.ClientSoftwareVersion = "1.22.3"
	return req
}

func TestParseRequestRoundTrip(t *testing.T) {
	for _, req := range []kmsg.Request{metadataV12(), produceV7(), apiVersionsV3()} {
		t.Run(kmsg.NameForKey(req.Key()), func(t *testing.T) {
			hdr, got, err := ParseRequest(frameOf(req, 42, "client-1"))
			if err != nil {
				t.Fatal(err)
			}
			want := RequestHeader{Key: req.Key(), Version: req.GetVersion(), CorrelationID: 42, ClientID: "client-1"}
			if hdr != want {
				t.Fatalf("header = %+v, want %+v", hdr, want)
			}
			if got.Key() != req.Key() || got.GetVersion() != req.GetVersion() {
				t.Fatalf("request is %s v%d", kmsg.NameForKey(got.Key()), got.GetVersion())
			}
			if !bytes.Equal(got.AppendTo(nil), req.AppendTo(nil)) {
				t.Fatal("decoded request re-encodes differently")
			}
		})
	}
}

func TestParseRequestDetails(t *testing.T) {
	_, req, err := ParseRequest(frameOf(apiVersionsV3(), 1, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if av := req.(*kmsg.ApiVersionsRequest); av.ClientSoftwareName != "franz-go" || av.ClientSoftwareVersion != "1.22.3" {
		t.Fatalf("client software = %q %q", av.ClientSoftwareName, av.ClientSoftwareVersion)
	}
	_, req, err = ParseRequest(frameOf(produceV7(), 1, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if recs := req.(*kmsg.ProduceRequest).Topics[0].Partitions[0].Records; string(recs) != "opaque record bytes" {
		t.Fatalf("records = %q", recs)
	}
}

// header builds a request header by hand, so tests can use a null client id
// and header tagged fields, which kmsg's formatter never writes.
func header(key, version int16, correlationID int32, clientID []byte, tags []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
		b = append(b, clientID...)
	}
	return append(b, tags...)
}

func TestParseRequestHeaderForms(t *testing.T) {
	body := metadataV12().AppendTo(nil)
	// Two tagged fields: tag 0 with 3 bytes, tag 7 with none.
	tags := []byte{2, 0, 3, 'a', 'b', 'c', 7, 0}
	hdr, req, err := ParseRequest(append(header(3, 12, 9, nil, tags), body...))
	if err != nil {
		t.Fatal(err)
	}
	if hdr.ClientID != "" || hdr.CorrelationID != 9 {
		t.Fatalf("header = %+v", hdr)
	}
	if !bytes.Equal(req.AppendTo(nil), body) {
		t.Fatal("body after tagged fields decoded wrongly")
	}
}

func TestParseRequestErrors(t *testing.T) {
	md := frameOf(metadataV12(), 5, "c")
	cases := []struct {
		name    string
		frame   []byte
		want    error
		wantHdr RequestHeader
	}{
		{"nil", nil, ErrMalformed, RequestHeader{}},
		{"short", []byte{0, 3, 0, 12, 0, 0, 0}, ErrMalformed, RequestHeader{}},
		{"no client id", []byte{0, 3, 0, 12, 0, 0, 0, 5}, ErrMalformed, RequestHeader{Key: 3, Version: 12, CorrelationID: 5}},
		{"client id overruns", header(3, 12, 5, []byte("c"), nil)[:10], ErrMalformed, RequestHeader{Key: 3, Version: 12, CorrelationID: 5}},
		{"body truncated", md[:len(md)-3], ErrMalformed, RequestHeader{Key: 3, Version: 12, CorrelationID: 5, ClientID: "c"}},
		{"tagged field overruns", header(3, 12, 5, []byte("c"), []byte{1, 0, 200}), ErrMalformed, RequestHeader{Key: 3, Version: 12, CorrelationID: 5, ClientID: "c"}},
		{"garbage body", append(header(0, 7, 6, []byte("c"), nil), 0xff, 0xff, 0xff), ErrMalformed, RequestHeader{Key: 0, Version: 7, CorrelationID: 6, ClientID: "c"}},
		{"unknown key", header(9999, 0, 7, []byte("cid"), nil), ErrUnknownAPI, RequestHeader{Key: 9999, CorrelationID: 7, ClientID: "cid"}},
		{"kmsg key not served", header(kmsg.AlterReplicaLogDirs.Int16(), 2, 7, []byte("cid"), nil), ErrUnknownAPI, RequestHeader{Key: kmsg.AlterReplicaLogDirs.Int16(), Version: 2, CorrelationID: 7, ClientID: "cid"}},
		{"ApiVersions too new", header(18, 5, 8, []byte("franz"), []byte{0}), ErrUnsupportedVersion, RequestHeader{Key: 18, Version: 5, CorrelationID: 8, ClientID: "franz"}},
		{"Produce too old", header(0, 2, 8, []byte("old"), nil), ErrUnsupportedVersion, RequestHeader{Key: 0, Version: 2, CorrelationID: 8, ClientID: "old"}},
		{"negative version", header(3, -1, 8, nil, nil), ErrUnsupportedVersion, RequestHeader{Key: 3, Version: -1, CorrelationID: 8}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr, req, err := ParseRequest(c.frame)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if req != nil {
				t.Fatalf("request returned with error: %v", req)
			}
			if hdr != c.wantHdr {
				t.Fatalf("header = %+v, want %+v", hdr, c.wantHdr)
			}
		})
	}
}
