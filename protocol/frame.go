package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxRequestSize is the default largest request frame, Kafka's
// socket.request.max.bytes.
const MaxRequestSize int32 = 100 << 20

var (
	// ErrFrameSize is a frame length below zero or above the allowed maximum.
	// The connection cannot be resynchronised after it: close it.
	ErrFrameSize = errors.New("protocol: invalid frame size")
	// ErrMalformed is a frame whose header or body cannot be decoded.
	ErrMalformed = errors.New("protocol: malformed request")
	// ErrUnknownAPI is an API key missing from the table in versions.go.
	ErrUnknownAPI = errors.New("protocol: unknown api key")
	// ErrUnsupportedVersion is a version outside the table's range for its key.
	ErrUnsupportedVersion = errors.New("protocol: unsupported api version")
)

// ReadFrame reads one frame: a 4-byte big-endian size, then that many bytes.
// It returns the body in a fresh slice, so requests decoded from it may keep
// sub-slices of it (kmsg does, for record bytes).
//
// A size below zero or above max returns an error wrapping ErrFrameSize before
// any of the body is read, so a hostile length never allocates. io.EOF is
// returned only at a clean frame boundary; a frame cut short returns
// io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int32) ([]byte, error) {
	var sizeBuf [4]byte
	if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
		// ReadFull reports io.EOF only when nothing at all was read, which is
		// exactly the clean boundary; a partial size is ErrUnexpectedEOF.
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	if size < 0 || size > max {
		return nil, fmt.Errorf("frame of %d bytes (max %d): %w", size, max, ErrFrameSize)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			// The size promised a body: running out here is a truncation.
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}
