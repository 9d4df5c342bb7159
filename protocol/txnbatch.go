package protocol

import (
	"encoding/binary"
	"errors"
)

// The batches a broker writes for transactions (Kafka's
// EndTransactionMarker and the transactional records of its group
// coordinator). Both carry no sequence (-1): a client's idempotent batch
// always has one (ValidateBatch), so a partition tells a coordinator's
// write from a client's by it and skips the sequence checks, as Kafka's
// log does for appends of origin COORDINATOR.

// Control record types: the key's second int16.
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// BuildTransactionalBatch is BuildBatch for records written inside
// producer pid's transaction at epoch (the transactional attribute set,
// no sequence): TxnOffsetCommit's offsets in __consumer_offsets.
func BuildTransactionalBatch(pid int64, epoch int16, records []Record, ts int64) []byte {
	return buildBatch(attrTransactional, pid, epoch, -1, records, ts)
}

// BuildControlBatch is the marker that ends producer pid's transaction
// in a partition: one control record whose key is version 0 and the type
// (ControlCommit or ControlAbort), whose value is version 0 and the
// coordinator's epoch.
func BuildControlBatch(pid int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	typ := ControlAbort
	if commit {
		typ = ControlCommit
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	val := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(coordinatorEpoch))
	return buildBatch(attrTransactional|attrControl, pid, epoch, -1, []Record{{Key: key, Value: val}}, ts)
}

// ErrNotControl is ControlMarker's answer for a batch that is not a
// transaction marker.
var ErrNotControl = errors.New("protocol: not a transaction marker")

// ControlMarker reads a control batch's marker: whether it commits, and
// the coordinator epoch that wrote it.
func ControlMarker(batch []byte) (commit bool, coordinatorEpoch int32, err error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return false, 0, err
	}
	if !h.Control() {
		return false, 0, ErrNotControl
	}
	recs, err := Records(batch)
	if err != nil {
		return false, 0, err
	}
	if len(recs) != 1 || len(recs[0].Key) < 4 {
		return false, 0, ErrNotControl
	}
	typ := int16(binary.BigEndian.Uint16(recs[0].Key[2:]))
	if typ != ControlAbort && typ != ControlCommit {
		return false, 0, ErrNotControl
	}
	if len(recs[0].Value) >= 6 {
		coordinatorEpoch = int32(binary.BigEndian.Uint32(recs[0].Value[2:]))
	}
	return typ == ControlCommit, coordinatorEpoch, nil
}
