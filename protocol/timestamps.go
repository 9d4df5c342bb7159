package protocol

import (
	"encoding/binary"
	"fmt"
)

// minRecordSize is the smallest encoded record: a length and six one-byte
// fields (attributes, timestamp and offset deltas, key and value lengths,
// header count). It bounds how many records a section can hold, so a hostile
// record count cannot size an allocation.
const minRecordSize = 7

// RecordTimestamps decodes the records of one stored magic-2 batch and returns
// each record's absolute offset and timestamp, for ListOffsets by timestamp
// and the time index. Compressed batches are decompressed (gzip, snappy raw
// or xerial-framed, lz4 frame, zstd). With LogAppendTime every record's
// timestamp is the batch's MaxTimestamp, as Kafka reports it.
//
// The CRC is not checked: the batch was validated when it was produced.
func RecordTimestamps(batch []byte) (offsets []int64, timestamps []int64, err error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return nil, nil, err
	}
	end := int64(h.Length) + logOverhead
	if end < BatchHeaderSize || end > int64(len(batch)) {
		return nil, nil, fmt.Errorf("batch length %d, have %d bytes: %w", h.Length, len(batch), ErrMalformed)
	}
	recs, err := decompress(h.Codec(), batch[BatchHeaderSize:end])
	if err != nil {
		return nil, nil, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	if h.NumRecords < 0 || int64(h.NumRecords) > int64(len(recs))/minRecordSize {
		return nil, nil, fmt.Errorf("batch at offset %d: %d records cannot fit in %d bytes: %w",
			h.BaseOffset, h.NumRecords, len(recs), ErrMalformed)
	}
	offsets = make([]int64, 0, h.NumRecords)
	timestamps = make([]int64, 0, h.NumRecords)
	for i := int32(0); i < h.NumRecords; i++ {
		tsDelta, offDelta, rest, ok := recordDeltas(recs)
		if !ok {
			return nil, nil, fmt.Errorf("batch at offset %d: record %d does not decode: %w", h.BaseOffset, i, ErrMalformed)
		}
		recs = rest
		offsets = append(offsets, h.BaseOffset+offDelta)
		if h.LogAppendTime() {
			timestamps = append(timestamps, h.MaxTimestamp)
		} else {
			timestamps = append(timestamps, h.BaseTimestamp+tsDelta)
		}
	}
	return offsets, timestamps, nil
}

// recordDeltas reads the timestamp and offset deltas of the record at the
// start of b and returns the bytes after it. A record is a zigzag-varint
// length, then attributes (int8), timestampDelta (varlong), offsetDelta
// (varint), key, value and headers; only the deltas are needed here.
func recordDeltas(b []byte) (tsDelta, offDelta int64, rest []byte, ok bool) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || length > int64(len(b)-n) {
		return 0, 0, nil, false
	}
	body, rest := b[n:n+int(length)], b[n+int(length):]
	if len(body) < 1 {
		return 0, 0, nil, false
	}
	body = body[1:] // attributes, unused since magic 2
	tsDelta, n = binary.Varint(body)
	if n <= 0 {
		return 0, 0, nil, false
	}
	body = body[n:]
	offDelta, n = binary.Varint(body)
	if n <= 0 {
		return 0, 0, nil, false
	}
	return tsDelta, offDelta, rest, true
}
