package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mlskit/mlskit/storage"
)

// rawDB opens the file with no store logic, to inspect or tamper with it.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func pragmaInt(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) int64 {
	t.Helper()
	var v int64
	if err := q.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestSchemaVersion(t *testing.T) {
	s, path := openTemp(t, nil)
	s.Close()
	db := rawDB(t, path)
	if v := pragmaInt(t, db, "user_version"); v != int64(len(migrations)) {
		t.Errorf("user_version = %d, want %d", v, len(migrations))
	}
	if v := pragmaInt(t, db, "application_id"); v != applicationID {
		t.Errorf("application_id = %#x, want %#x", v, applicationID)
	}
	db.Close()

	// Reopening an up-to-date store changes nothing and works.
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	s.Close()
}

func TestSchemaTooNew(t *testing.T) {
	s, path := openTemp(t, nil)
	if err := s.Write(context.Background(), &storage.Batch{GroupID: gid, State: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := rawDB(t, path)
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, nil); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
}

func TestNotStore(t *testing.T) {
	for name, setup := range map[string]string{
		"other application": "PRAGMA application_id = 1234",
		"foreign tables":    "CREATE TABLE t (x)",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "other.db")
			db := rawDB(t, path)
			if _, err := db.Exec(setup); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if _, err := Open(path, nil); !errors.Is(err, ErrNotStore) {
				t.Fatalf("Open: err = %v, want ErrNotStore", err)
			}
		})
	}
}

// TestMigrationHook appends a migration, as a future schema change would,
// and checks that it runs once on a database of the previous version, and
// that a failing migration leaves the database at its old version.
func TestMigrationHook(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t, nil)
	if err := s.Write(ctx, &storage.Batch{GroupID: gid, State: []byte("v1 state"), Epoch: 7}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	saved := migrations
	t.Cleanup(func() { migrations = saved })
	var mu sync.Mutex
	runs := 0
	fail := true
	migrations = append(saved[:len(saved):len(saved)], func(ctx context.Context, tx *sql.Tx) error {
		mu.Lock()
		defer mu.Unlock()
		runs++
		if _, err := tx.ExecContext(ctx, "CREATE TABLE extra (x BLOB)"); err != nil {
			return err
		}
		if fail {
			return errors.New("injected migration failure")
		}
		return nil
	})

	if _, err := Open(path, nil); err == nil {
		t.Fatal("Open succeeded although the migration failed")
	}
	db := rawDB(t, path)
	if v := pragmaInt(t, db, "user_version"); v != int64(len(saved)) {
		t.Fatalf("after a failed migration user_version = %d, want %d", v, len(saved))
	}
	db.Close()

	fail = false
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open with the new migration: %v", err)
	}
	if st, e, err := s.LoadGroup(ctx, gid); err != nil || string(st) != "v1 state" || e != 7 {
		t.Fatalf("data written before the migration: %q, %d, %v", st, e, err)
	}
	s.Close()
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if runs != 2 {
		t.Fatalf("migration ran %d times, want 2 (one failed, one that stuck)", runs)
	}
	db = rawDB(t, path)
	if v := pragmaInt(t, db, "user_version"); v != int64(len(saved)+1) {
		t.Fatalf("user_version = %d, want %d", v, len(saved)+1)
	}
}

// TestConnectionSettings checks that every connection of the pool, not just
// the first, has the settings the guarantees rest on: secure_delete in
// particular is per connection.
func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, &Options{MaxReaders: 3})
	var conns []*sql.Conn
	for range 4 {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var mode string
		if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("connection %d: journal_mode %q, %v", i, mode, err)
		}
		if v := pragmaInt(t, c, "synchronous"); v != 2 {
			t.Errorf("connection %d: synchronous = %d, want 2 (FULL)", i, v)
		}
		if v := pragmaInt(t, c, "secure_delete"); v != 1 {
			t.Errorf("connection %d: secure_delete = %d, want 1", i, v)
		}
		if v := pragmaInt(t, c, "temp_store"); v != 2 {
			t.Errorf("connection %d: temp_store = %d, want 2 (MEMORY)", i, v)
		}
		if v := pragmaInt(t, c, "busy_timeout"); v != 5000 {
			t.Errorf("connection %d: busy_timeout = %d, want 5000", i, v)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestTwoHandles opens the same file twice, as two processes would, and
// writes through both at once: BEGIN IMMEDIATE and the busy timeout must
// serialise them without errors or lost batches.
func TestTwoHandles(t *testing.T) {
	ctx := context.Background()
	a, path := openTemp(t, nil)
	b, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for h, s := range []*Store{a, b} {
		wg.Go(func() {
			for i := range n {
				ref := fmt.Appendf(nil, "kp %d/%d", h, i)
				err := s.Write(ctx, &storage.Batch{
					GroupID:     gid,
					State:       fmt.Appendf(nil, "state %d/%d", h, i),
					KeyPackages: []storage.Record{{Key: ref, Value: []byte("v")}},
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Write: %v", err)
	}
	for h := range 2 {
		for i := range n {
			if _, err := a.KeyPackage(ctx, fmt.Appendf(nil, "kp %d/%d", h, i)); err != nil {
				t.Errorf("batch %d of handle %d lost: %v", i, h, err)
			}
		}
	}
}

// TestMigrationToAppRecords opens a file made by a version 1 build (before
// app_records) with this build: the upgrade keeps what was there and the
// new table works.
func TestMigrationToAppRecords(t *testing.T) {
	ctx := context.Background()
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = saved[:1]
	s, path := openTemp(t, nil)
	if err := s.Write(ctx, &storage.Batch{GroupID: gid, State: []byte("v1 state"), Epoch: 3,
		PSKs: []storage.Record{{Key: []byte("p"), Value: []byte("psk")}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := rawDB(t, path)
	if v := pragmaInt(t, db, "user_version"); v != 1 {
		t.Fatalf("user_version = %d, want 1 (a version 1 file)", v)
	}
	db.Close()

	migrations = saved
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open of a version 1 file: %v", err)
	}
	defer s.Close()
	if st, e, err := s.LoadGroup(ctx, gid); err != nil || string(st) != "v1 state" || e != 3 {
		t.Fatalf("group after the upgrade: %q, %d, %v", st, e, err)
	}
	if v, err := s.PSK(ctx, []byte("p")); err != nil || string(v) != "psk" {
		t.Fatalf("PSK after the upgrade: %q, %v", v, err)
	}
	if err := s.Write(ctx, &storage.Batch{AppRecords: []storage.Record{{Key: []byte("k"), Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.AppRecord(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("AppRecord after the upgrade: %q, %v", v, err)
	}
}
