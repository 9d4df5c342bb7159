package protocol

import (
	"encoding/binary"
	"fmt"
	"math"
)

// BatchHeaderSize is the size of a magic-2 record batch header, from
// baseOffset through recordCount.
const BatchHeaderSize = 61

// Byte offsets of the magic-2 batch header fields.
const (
	offBaseOffset           = 0
	offLength               = 8
	offPartitionLeaderEpoch = 12
	offMagic                = 16
	offCRC                  = 17
	offAttributes           = 21 // the CRC covers from here to the end
	offLastOffsetDelta      = 23
	offBaseTimestamp        = 27
	offMaxTimestamp         = 35
	offProducerID           = 43
	offProducerEpoch        = 51
	offBaseSequence         = 53
	offNumRecords           = 57
)

// logOverhead is the part of a batch that batchLength does not count:
// baseOffset and batchLength themselves.
const logOverhead = offPartitionLeaderEpoch

// Compression codecs, the low three bits of the batch attributes.
const (
	CodecNone   int8 = 0
	CodecGzip   int8 = 1
	CodecSnappy int8 = 2
	CodecLZ4    int8 = 3
	CodecZstd   int8 = 4
)

// Attribute bits above the codec.
const (
	attrLogAppendTime = 1 << 3
	attrTransactional = 1 << 4
	attrControl       = 1 << 5
)

// BatchHeader is the decoded header of a magic-2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after this field: the batch is Length+12 bytes
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Codec returns the compression codec (CodecNone ... CodecZstd, or an
// invalid 5-7).
func (h BatchHeader) Codec() int8 { return int8(h.Attributes & 7) }

// LogAppendTime reports whether the batch's timestamps are the broker's
// append time (MaxTimestamp) rather than the producer's create times.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds a control record (a transaction
// marker); clients may not produce these.
func (h BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

// LastSequence returns the sequence number of the batch's last record.
// Sequences wrap from MaxInt32 to 0, as in Kafka's
// DefaultRecordBatch.incrementSequence, and a batch without a sequence (-1)
// keeps -1.
func (h BatchHeader) LastSequence() int32 {
	if h.BaseSequence == -1 {
		return -1
	}
	seq := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if seq > math.MaxInt32 {
		seq -= math.MaxInt32 + 1
	}
	return int32(seq)
}

// ParseBatchHeader decodes the header of a magic-2 batch. It reads only the
// first BatchHeaderSize bytes and checks nothing beyond magic; use
// ValidateProduceBatch for untrusted input.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("batch header of %d bytes, need %d: %w", len(b), BatchHeaderSize, ErrMalformed)
	}
	h := decodeBatchHeader(b)
	if h.Magic != 2 {
		return h, fmt.Errorf("batch magic %d, only 2 is supported: %w", h.Magic, ErrMalformed)
	}
	return h, nil
}

// decodeBatchHeader decodes b[:BatchHeaderSize] without checks.
func decodeBatchHeader(b []byte) BatchHeader {
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offPartitionLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}
}

// SetBaseOffset overwrites the batch's baseOffset in place. The field lies
// outside the CRC, so the stored producer bytes stay valid. A batch shorter
// than its header is left unchanged.
func SetBaseOffset(batch []byte, off int64) {
	if len(batch) >= BatchHeaderSize {
		binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(off))
	}
}

// SetPartitionLeaderEpoch overwrites the batch's partitionLeaderEpoch in
// place (outside the CRC, like the base offset). Producers send anything
// there (sarama sends 0), so the broker always overwrites it. A batch shorter
// than its header is left unchanged.
func SetPartitionLeaderEpoch(batch []byte, epoch int32) {
	if len(batch) >= BatchHeaderSize {
		binary.BigEndian.PutUint32(batch[offPartitionLeaderEpoch:], uint32(epoch))
	}
}
