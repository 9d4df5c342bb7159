package protocol

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kerr"
)

// castagnoli is the CRC32C table; magic-2 batches are checksummed with it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sizes from Kafka's ByteBufferLogInputStream: a batch is only seen once its
// header up to magic is present, and a batchLength below the smallest legacy
// record's overhead is corruption rather than a short read.
const (
	headerUpToMagic   = offMagic + 1
	minRecordOverhead = 14
)

// ValidateProduceBatch checks the records of one partition of a Produce v3+
// request and returns the error a Java broker would send, or nil with the
// decoded header. It reads only the header and checksums the rest: it never
// decompresses, so it is cheap enough for the produce hot path, and it never
// panics, whatever the input.
//
// The checks and their codes follow the Java broker in order:
// ProduceRequest.validateRecords (at parse time), then UnifiedLog's
// analyzeAndValidateRecords and LogValidator.validateBatch:
//   - no complete batch, a magic other than 2, or a second complete batch:
//     INVALID_RECORD;
//   - a batchLength under 14 or a magic outside 0..2: CORRUPT_MESSAGE;
//   - a batch larger than maxMessageBytes: MESSAGE_TOO_LARGE;
//   - a batch smaller than its header, or a CRC32C mismatch: CORRUPT_MESSAGE;
//   - a record count of zero or less, or one that disagrees with
//     lastOffsetDelta, a control batch, or a producer id without a base
//     sequence: INVALID_RECORD.
//
// Two deliberate differences from Kafka, because the broker stores the
// producer's bytes as they are: trailing bytes that do not form a complete
// second batch are CORRUPT_MESSAGE (Kafka silently trims them), and an
// unknown codec (5-7) is CORRUPT_MESSAGE (Kafka fails with an unknown server
// error when it meets it).
func ValidateProduceBatch(records []byte, maxMessageBytes int32) (BatchHeader, *kerr.Error) {
	size, errCode := completeBatchSize(records)
	if errCode != nil {
		return BatchHeader{}, errCode
	}
	if size < 0 {
		return BatchHeader{}, kerr.InvalidRecord // no complete batch
	}
	if magic := int8(records[offMagic]); magic != 2 {
		return BatchHeader{}, kerr.InvalidRecord
	}
	if rest := records[size:]; len(rest) > 0 {
		if next, _ := completeBatchSize(rest); next > 0 {
			return BatchHeader{}, kerr.InvalidRecord // more than one batch
		}
		return BatchHeader{}, kerr.CorruptMessage
	}
	if int64(size) > int64(maxMessageBytes) {
		return BatchHeader{}, kerr.MessageTooLarge
	}
	if size < BatchHeaderSize {
		return BatchHeader{}, kerr.CorruptMessage
	}
	h := decodeBatchHeader(records)
	if crc32.Checksum(records[offAttributes:], castagnoli) != h.CRC {
		return h, kerr.CorruptMessage
	}
	if h.Codec() > CodecZstd {
		return h, kerr.CorruptMessage
	}
	// LogValidator.validateBatch: the offset range, the count and their
	// agreement. Counting in int64 keeps a hostile lastOffsetDelta of
	// MaxInt32 from wrapping.
	if int64(h.LastOffsetDelta)+1 <= 0 || h.NumRecords <= 0 ||
		int64(h.LastOffsetDelta)+1 != int64(h.NumRecords) {
		return h, kerr.InvalidRecord
	}
	if h.Control() {
		return h, kerr.InvalidRecord // only the broker writes transaction markers
	}
	if h.ProducerID >= 0 && h.BaseSequence < 0 {
		return h, kerr.InvalidRecord // idempotent batches must carry a sequence
	}
	return h, nil
}

// completeBatchSize mirrors Kafka's ByteBufferLogInputStream.nextBatchSize
// followed by its completeness check: it returns the size of the complete
// batch at the start of b, -1 if b holds none (too short for a header, or
// cut off), or the error Kafka's iterator throws for a corrupt header.
func completeBatchSize(b []byte) (int, *kerr.Error) {
	if len(b) < logOverhead {
		return -1, nil
	}
	length := int32(binary.BigEndian.Uint32(b[offLength:]))
	if length < minRecordOverhead {
		return -1, kerr.CorruptMessage
	}
	if len(b) < headerUpToMagic {
		return -1, nil
	}
	if magic := int8(b[offMagic]); magic < 0 || magic > 2 {
		return -1, kerr.CorruptMessage
	}
	size := int64(length) + logOverhead
	if int64(len(b)) < size {
		return -1, nil
	}
	return int(size), nil
}
