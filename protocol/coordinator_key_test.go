package protocol

import "testing"

// Expected values are Java's: Utils.abs("...".hashCode()) % n, the hash
// computed over UTF-16 code units ("polygenelubricants" hashes to
// Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0).
func TestCoordinatorPartitionMatchesKafka(t *testing.T) {
	cases := []struct {
		group string
		n     int32
		want  int32
	}{
		{"test-group", 50, 12}, // hashCode 627841412
		{"group", 50, 47},      // hashCode 98629247
		{"my-group", 50, 12},   // hashCode -1906497762
		{"console-consumer-12345", 50, 6},
		{"test-group", 16, 4},
		{"😀x", 50, 39}, // a surrogate pair: hashCode 54959989
		{"polygenelubricants", 50, 0},
		{"", 50, 0},
	}
	for _, c := range cases {
		if got := CoordinatorPartition(c.group, c.n); got != c.want {
			t.Errorf("CoordinatorPartition(%q, %d) = %d, want %d", c.group, c.n, got, c.want)
		}
	}
}
