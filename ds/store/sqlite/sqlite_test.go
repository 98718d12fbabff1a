package sqlite

import (
	"fmt"
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

// BenchmarkAppend: go test -run '^$' -bench Append ./ds/store/sqlite/
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{0, 256 << 10, 2 << 20} {
		b.Run(fmt.Sprint("groupinfo=", size), func(b *testing.B) {
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			storetest.BenchmarkAppend(b, s, size)
		})
	}
}

// TestMoveGroupInfos: a database of an earlier version kept the published
// GroupInfo in the groups table; Open moves it into group_infos, once.
func TestMoveGroupInfos(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, g := range []string{"old", "both", "none"} {
		if _, err := s.CreateGroup(ctx, []byte(g), "alice", nil, store.Policy{}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// As an earlier version left it: "old" has its GroupInfo in groups
	// only; "both" was written there after a move (an older binary run
	// again), so that copy is the newer one.
	for _, q := range []struct{ sql, g, gi string }{
		{`UPDATE groups SET group_info = ?2 WHERE group_id = ?1`, "old", "gi-old"},
		{`INSERT INTO group_infos (group_id, group_info) VALUES (?1, ?2)`, "both", "gi-stale"},
		{`UPDATE groups SET group_info = ?2 WHERE group_id = ?1`, "both", "gi-new"},
	} {
		res, err := s.w.Exec(q.sql, []byte(q.g), []byte(q.gi))
		if n, _ := res.RowsAffected(); err != nil || n != 1 {
			t.Fatalf("%s: %d rows, %v", q.sql, n, err)
		}
	}
	s.Close()
	for range 2 { // the second Open finds nothing to move
		s, err = Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		for g, want := range map[string]string{"old": "gi-old", "both": "gi-new", "none": ""} {
			got, err := s.Group(ctx, []byte(g))
			if err != nil || string(got.GroupInfo) != want {
				t.Fatalf("group %s: GroupInfo %q %v, want %q", g, got.GroupInfo, err, want)
			}
		}
		var left int
		if err := s.w.QueryRow(`SELECT count(*) FROM groups WHERE group_info IS NOT NULL`).Scan(&left); err != nil || left != 0 {
			t.Fatalf("%d GroupInfos left in groups (%v)", left, err)
		}
		s.Close()
	}
}
