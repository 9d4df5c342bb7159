// Package txns is the transaction coordinator: it serves Kafka's
// transactional producers (InitProducerId with a transactional id,
// AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions,
// ListTransactions) from the __transaction_state partitions this node
// leads. One actor per partition owns the transactions whose ids hash to
// it; every state change is a record in Kafka's own format written through
// the partition's replica before it takes effect, so a new leader rebuilds
// every transaction from the log and finishes what was in flight.
//
// Ending a transaction is Kafka's two-phase protocol: a PrepareCommit (or
// PrepareAbort) record, then a marker written into every partition of the
// transaction (through Node.WriteMarkers, a raft command on each
// partition's leader), then a CompleteCommit (CompleteAbort) record. A
// coordinator that takes over a partition in the middle finds the Prepare
// record and writes the markers again; partitions fence markers of an
// older coordinator by its epoch (the partition's leader term).
//
// It knows the node only through Node; the connection side (package
// actors) hands it Calls and relays answers.
package txns
