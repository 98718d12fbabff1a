package sqlite

import (
	"testing"
	"time"

	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	gid := []byte("g")
	if _, err := s.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Append(ctx, store.Append{GroupID: gid, Sender: "alice", Now: time.Now(),
		Entries: []store.Entry{{Kind: store.KindApplication, Body: []byte("hello")}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Records(ctx, gid, 0, 10)
	if err != nil || len(got) != 1 || string(got[0].Body) != "hello" || string(got[0].ChainHash) != string(recs[0].ChainHash) {
		t.Fatalf("after reopen: %v %+v", err, got)
	}
	var mode string
	var sync int
	if err := s.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q %v", mode, err)
	}
	if err := s.w.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous %d (want 2, FULL) %v", sync, err)
	}
}
