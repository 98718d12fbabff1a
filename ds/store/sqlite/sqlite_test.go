package sqlite

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// oldRecords is the records table as versions before the rowid layout
// made it.
var oldRecords = strings.Replace(schema, "PRIMARY KEY (group_id, seq)\n);", "PRIMARY KEY (group_id, seq)\n) WITHOUT ROWID;", 1)

// openOldRecords opens a store in dir after creating its database with
// the records table of oldRecords.
func openOldRecords(t *testing.T, dir string) *Store {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "mlsd.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(oldRecords)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ddl string
	if err := s.w.QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'records'`).Scan(&ddl); err != nil || !strings.Contains(ddl, "WITHOUT ROWID") {
		t.Fatalf("records: %q %v", ddl, err)
	}
	return s
}

// TestConformanceOldRecords runs the conformance suite on a database whose
// records table has the earlier WITHOUT ROWID layout, which Open keeps.
func TestConformanceOldRecords(t *testing.T) {
	if oldRecords == schema {
		t.Fatal("the records table's definition changed: update oldRecords")
	}
	storetest.Run(t, func(t *testing.T) store.Store { return openOldRecords(t, t.TempDir()) })
}

// TestRecordsLayout: a 1 KiB message takes well under 2 KB of disk (4.7 KB
// in the WITHOUT ROWID layout, where most of it spilled to a page of its
// own).
func TestRecordsLayout(t *testing.T) {
	for _, layout := range []struct {
		name string
		old  bool
		max  float64
	}{{"rowid", false, 2000}, {"without rowid", true, 1e9}} {
		dir := t.TempDir()
		var s *Store
		if layout.old {
			s = openOldRecords(t, dir)
		} else {
			var err error
			if s, err = Open(dir); err != nil {
				t.Fatal(err)
			}
		}
		ctx := t.Context()
		g := []byte("g")
		if _, err := s.CreateGroup(ctx, g, "alice", nil, store.Policy{}, time.Now()); err != nil {
			t.Fatal(err)
		}
		const n = 2000
		body := make([]byte, 1024)
		for i := range n {
			copy(body, fmt.Sprint(i, "/"))
			if _, err := s.Append(ctx, store.Append{GroupID: g, Sender: "alice", Now: time.Now(),
				Entries: []store.Entry{{Kind: store.KindApplication, WireFormat: 2, Body: body}}}); err != nil {
				t.Fatal(err)
			}
		}
		s.Close() // checkpoints the WAL into the database file
		fi, err := os.Stat(filepath.Join(dir, "mlsd.db"))
		if err != nil {
			t.Fatal(err)
		}
		per := float64(fi.Size()) / n
		t.Logf("%s: %.0f B of database per 1 KiB message", layout.name, per)
		if per > layout.max {
			t.Errorf("%s: %.0f B per 1 KiB message, want at most %.0f", layout.name, per, layout.max)
		}
	}
}
