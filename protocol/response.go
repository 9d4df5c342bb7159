package protocol

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AppendResponse appends one complete response frame for the request hdr
// describes: the 4-byte size, the correlation id, an empty tagged-field
// section if the response version is flexible, then resp encoded at
// hdr.Version (resp's version is set to it first).
//
// ApiVersions is the exception: its response header is always v0, without
// tagged fields, even for flexible versions, because a client must be able to
// read it before it knows which versions the broker speaks (KIP-511).
func AppendResponse(dst []byte, hdr RequestHeader, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // size, patched below
	dst = binary.BigEndian.AppendUint32(dst, uint32(hdr.CorrelationID))
	resp.SetVersion(hdr.Version)
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		dst = append(dst, 0) // no header tagged fields
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// AppendApiVersionsUnsupported appends the answer to an ApiVersions request
// whose version we do not serve. Kafka answers such a request in the v0
// format, which every client can read, with UNSUPPORTED_VERSION and the full
// list of served ranges; the client then retries with the highest ApiVersions
// version both sides know.
func AppendApiVersionsUnsupported(dst []byte, correlationID int32) []byte {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = ApiVersionsKeys()
	hdr := RequestHeader{Key: kmsg.ApiVersions.Int16(), Version: 0, CorrelationID: correlationID}
	return AppendResponse(dst, hdr, resp)
}
