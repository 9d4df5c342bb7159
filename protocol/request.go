package protocol

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RequestHeader is the request header common to header versions 1 and 2.
// Tagged fields of a v2 header are skipped: no header tag is used by any
// request we serve.
type RequestHeader struct {
	Key, Version  int16
	CorrelationID int32
	ClientID      string
}

// ParseRequest parses one request frame (as returned by ReadFrame): the
// header, then the body decoded with kmsg at the header's version.
//
// The header is v1 for non-flexible request versions and v2 (v1 plus tagged
// fields) for flexible ones; kmsg's IsFlexible decides, which also covers
// ApiVersions v3+, whose request header is v2 even though its response
// header is not.
//
// Errors wrap ErrMalformed (frame shorter than the fixed header, or a header
// or body that does not decode), ErrUnknownAPI (hdr filled, nil request) or
// ErrUnsupportedVersion (hdr filled, nil request; for ApiVersions answer with
// AppendApiVersionsUnsupported). The request may alias frame.
func ParseRequest(frame []byte) (RequestHeader, kmsg.Request, error) {
	var hdr RequestHeader
	if len(frame) < 8 {
		return hdr, nil, fmt.Errorf("request of %d bytes, header needs 8: %w", len(frame), ErrMalformed)
	}
	hdr.Key = int16(binary.BigEndian.Uint16(frame[0:]))
	hdr.Version = int16(binary.BigEndian.Uint16(frame[2:]))
	hdr.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))

	// The client id is a classic (non-compact) nullable string in both header
	// versions, so it is read before we know whether the version is flexible.
	rest := frame[8:]
	clientID, rest, ok := readNullableString(rest)
	if !ok {
		return hdr, nil, fmt.Errorf("%s: client id: %w", apiName(hdr.Key), ErrMalformed)
	}
	hdr.ClientID = clientID

	vr, served := SupportedVersions(hdr.Key)
	if !served {
		return hdr, nil, fmt.Errorf("key %d: %w", hdr.Key, ErrUnknownAPI)
	}
	if hdr.Version < vr.Min || hdr.Version > vr.Max {
		return hdr, nil, fmt.Errorf("%s v%d (serving v%d-v%d): %w",
			apiName(hdr.Key), hdr.Version, vr.Min, vr.Max, ErrUnsupportedVersion)
	}
	req := kmsg.RequestForKey(hdr.Key)
	if req == nil {
		// Only reachable if a table row names a key kmsg lacks; a test
		// guards against that, but never hand the caller a nil request.
		return hdr, nil, fmt.Errorf("key %d unknown to kmsg: %w", hdr.Key, ErrUnknownAPI)
	}
	req.SetVersion(hdr.Version)
	if req.IsFlexible() {
		if rest, ok = skipTaggedFields(rest); !ok {
			return hdr, nil, fmt.Errorf("%s v%d: header tagged fields: %w", apiName(hdr.Key), hdr.Version, ErrMalformed)
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return hdr, nil, fmt.Errorf("%s v%d: body: %v: %w", apiName(hdr.Key), hdr.Version, err, ErrMalformed)
	}
	return hdr, req, nil
}

// apiName names a key for error messages, including keys kmsg does not know.
func apiName(key int16) string {
	if name := kmsg.NameForKey(key); name != "" && name != "Unknown" {
		return name
	}
	return fmt.Sprintf("key %d", key)
}

// readNullableString reads an int16-length string; any negative length is
// null, as in the Java client's readNullableString.
func readNullableString(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n < 0 {
		return "", b, true
	}
	if len(b) < int(n) {
		return "", nil, false
	}
	return string(b[:n]), b[n:], true
}

// skipTaggedFields skips a tagged-field section: a count, then per field a
// tag and a length-prefixed value, all unsigned varints.
func skipTaggedFields(b []byte) ([]byte, bool) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, false
	}
	b = b[n:]
	for i := uint64(0); i < count; i++ {
		if _, n = binary.Uvarint(b); n <= 0 { // tag
			return nil, false
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, false
		}
		b = b[n+int(size):]
	}
	return b, true
}
