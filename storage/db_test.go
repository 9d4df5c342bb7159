package storage

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
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

// TestPebbleFatalFailStops: a fatal error Pebble reports (its Logger's
// Fatalf, which Pebble calls for a failed WAL write and then goes on as if
// the commit succeeded) reaches the injected FailStop, and no commit after
// it reports success.
func TestPebbleFatalFailStops(t *testing.T) {
	type call struct {
		reason string
		err    error
	}
	var calls []call
	db, err := OpenDBWith(t.TempDir(), DBOptions{FailStop: func(reason string, err error) {
		calls = append(calls, call{reason, err})
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	b := db.NewBatch()
	_ = b.Set([]byte("meta/a"), []byte("1"), nil)
	if err := db.Commit(b, true); err != nil {
		t.Fatalf("commit before the failure: %v", err)
	}

	// What Pebble does on a fatal commit error (db.go: "pebble: fatal
	// commit error"), through the logger the DB gave it.
	pebbleLogger{slog.New(slog.DiscardHandler), db}.Fatalf("pebble: fatal commit error: %v", errors.New("injected WAL write error"))
	if len(calls) != 1 || calls[0].reason != "pebble" || !strings.Contains(calls[0].err.Error(), "injected WAL write error") {
		t.Fatalf("FailStop calls %+v, want one naming pebble and the cause", calls)
	}

	b = db.NewBatch()
	_ = b.Set([]byte("meta/b"), []byte("2"), nil)
	if err := db.Commit(b, true); !errors.Is(err, ErrFailed) {
		t.Fatalf("commit after the failure returned %v, want ErrFailed", err)
	}
}
