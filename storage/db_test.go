package storage

import (
	"slices"
	"testing"
)

// TestDBRaftGroups: DB.Groups lists each raft group with keys once,
// whatever the number of entries, and forgets a deleted one.
func TestDBRaftGroups(t *testing.T) {
	db := openTestDB(t, t.TempDir())
	for _, g := range []uint64{0, 7, 300} {
		if _, err := OpenLogStore(db, g, []uint64{1}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Groups()
	if err != nil || !slices.Equal(got, []uint64{0, 7, 300}) {
		t.Fatalf("Groups() = %v, %v; want [0 7 300]", got, err)
	}
	if err := db.DeleteGroup(7); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Groups(); !slices.Equal(got, []uint64{0, 300}) {
		t.Fatalf("after deleting group 7: %v", got)
	}
}
