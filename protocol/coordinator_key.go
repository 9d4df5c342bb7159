package protocol

// CoordinatorPartition is the partition of an internal topic of n
// partitions that holds a coordinator key (a group id in
// __consumer_offsets, a transactional id in __transaction_state), as Kafka
// maps it: Utils.abs(key.hashCode()) % n, with Java's String.hashCode
// over UTF-16 code units, so that a client or tool that computes it finds
// the same partition.
func CoordinatorPartition(key string, n int32) int32 {
	var h int32
	for _, r := range key {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -2147483648 {
		h = 0 // Kafka's Utils.abs maps MinValue to 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}
