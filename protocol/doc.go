// Package protocol is the Kafka wire: request framing, request and response
// headers, the table of supported API versions, and record-batch (magic 2)
// validation. It is pure: no actors and no I/O beyond an io.Reader.
package protocol
