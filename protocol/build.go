package protocol

import (
	"encoding/binary"
	"hash/crc32"
)

// Record is one record to put in a batch the broker writes itself (the
// records of internal topics). A nil Value is a tombstone.
type Record struct {
	Key   []byte
	Value []byte
}

// BuildBatch encodes records as one uncompressed magic-2 batch at base
// offset 0 with every timestamp set to ts, no producer id, and its CRC32C.
func BuildBatch(records []Record, ts int64) []byte {
	return BuildProducerBatch(-1, -1, -1, records, ts)
}

// BuildProducerBatch is BuildBatch for producer pid at epoch, its first
// record at sequence seq (-1, -1, -1: no producer).
func BuildProducerBatch(pid int64, epoch int16, seq int32, records []Record, ts int64) []byte {
	return buildBatch(0, pid, epoch, seq, records, ts)
}

// buildBatch encodes records with the batch attributes attrs.
func buildBatch(attrs int16, pid int64, epoch int16, seq int32, records []Record, ts int64) []byte {
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+64*len(records))
	for i, r := range records {
		var body []byte
		body = append(body, 0)                       // attributes
		body = binary.AppendVarint(body, 0)          // timestamp delta
		body = binary.AppendVarint(body, int64(i))   // offset delta
		body = appendVarBytes(body, r.Key)           // key
		body = appendVarBytes(body, r.Value)         // value
		body = binary.AppendUvarint(body, 0)         // no headers
		b = binary.AppendVarint(b, int64(len(body))) // record length
		b = append(b, body...)
	}
	binary.BigEndian.PutUint64(b[offBaseOffset:], 0)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[offPartitionLeaderEpoch:], 0)
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(len(records)-1))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(len(records)))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

func appendVarBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}

// BatchRecord is one decoded record of an uncompressed batch.
type BatchRecord struct {
	Offset int64
	Key    []byte
	Value  []byte // nil for a tombstone
}

// Records decodes the records of an uncompressed batch (internal topics
// are written uncompressed by the broker itself). Compressed batches
// are decompressed first.
func Records(batch []byte) ([]BatchRecord, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return nil, err
	}
	body := batch[BatchHeaderSize:]
	if h.Codec() != CodecNone {
		if body, err = decompress(h.Codec(), body); err != nil {
			return nil, err
		}
	}
	if h.NumRecords < 0 || int(h.NumRecords) > len(body) {
		return nil, ErrMalformed // every record takes at least a byte
	}
	out := make([]BatchRecord, 0, h.NumRecords)
	for i := int32(0); i < h.NumRecords; i++ {
		n, k := binary.Varint(body)
		if k <= 0 || n < 0 || int64(len(body)-k) < n {
			return nil, ErrMalformed
		}
		rec := body[k : k+int(n)]
		body = body[k+int(n):]
		if len(rec) < 1 {
			return nil, ErrMalformed
		}
		rec = rec[1:] // attributes
		var ok bool
		var offDelta int64
		if _, rec, ok = readVarint(rec); !ok { // timestamp delta
			return nil, ErrMalformed
		}
		if offDelta, rec, ok = readVarint(rec); !ok {
			return nil, ErrMalformed
		}
		var key, val []byte
		if key, rec, ok = readVarBytes(rec); !ok {
			return nil, ErrMalformed
		}
		if val, _, ok = readVarBytes(rec); !ok {
			return nil, ErrMalformed
		}
		out = append(out, BatchRecord{Offset: h.BaseOffset + offDelta, Key: key, Value: val})
	}
	return out, nil
}

func readVarint(b []byte) (int64, []byte, bool) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return v, b[n:], true
}

func readVarBytes(b []byte) ([]byte, []byte, bool) {
	n, b, ok := readVarint(b)
	if !ok {
		return nil, nil, false
	}
	if n < 0 {
		return nil, b, true
	}
	if int64(len(b)) < n {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}
