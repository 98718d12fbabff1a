// Package sqlite is a storage.Store in a single SQLite database file, using
// modernc.org/sqlite (SQLite compiled to Go: no cgo, so the module still
// cross-compiles with a plain go build).
//
// # Durability and crash safety
//
// The database runs in WAL mode with synchronous=FULL, so a Write that has
// returned survives a crash of the process or of the machine, and a Write
// interrupted by one is rolled back when the database is next opened.
//
// # Forward secrecy on disk
//
// Deleting a row does not by itself erase its bytes: SQLite leaves freed cells
// and pages as they were, and in WAL mode the old page images stay in the
// -wal file until a checkpoint copies the new ones back and the log is reset.
// RFC 9420, Section 9.2 requires consumed keys to be deleted, so the store
// runs with secure_delete=ON (freed content is overwritten with zeros) and,
// after every Write that deleted or overwrote a row, checkpoints with
// wal_checkpoint(TRUNCATE), which leaves the -wal file empty. When the
// checkpoint cannot complete at once (a reader of another process holds an
// old snapshot) it is retried on the next Write and at Close; Checkpoint runs
// it on demand. What lies below the file system (SSD wear levelling,
// snapshots, backups) is outside what a database can scrub; see
// docs/STORAGE.md.
//
// # Concurrency
//
// A Store is safe for concurrent use. Reads run in parallel on a pool of
// connections; writes take a process-wide lock and BEGIN IMMEDIATE, so there
// is one writer at a time, also across processes sharing the file (they wait
// up to Options.BusyTimeout for each other).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/mlskit/mlskit/storage"
)

// Options configures Open. The zero value is the recommended configuration.
type Options struct {
	// BusyTimeout is how long a statement waits for another connection or
	// process holding a lock on the database. Zero means 5 seconds.
	BusyTimeout time.Duration

	// MaxReaders bounds the connections used for reads. Zero means 4.
	MaxReaders int

	// Test knobs, to show that the forward-secrecy test fails without the
	// measures it checks.
	insecureDelete bool // leave secure_delete off
	noCheckpoint   bool // never checkpoint after a deleting Write
	nonAtomic      bool // run each statement of a Write in its own transaction
}

// Store is a storage.Store in a SQLite database file.
type Store struct {
	db   *sql.DB
	opts Options

	// mu guards closed: methods hold it for reading while they use db, and
	// Close holds it for writing, so Close waits for operations in flight.
	mu     sync.RWMutex
	closed bool

	// wmu serialises writers within the process; BEGIN IMMEDIATE does so
	// across processes. It also guards dirty.
	wmu sync.Mutex
	// dirty is set when deleted bytes may remain in the -wal file because a
	// checkpoint has not completed since they were deleted.
	dirty bool

	// gate is held for reading by every read and for writing by a
	// checkpoint. A TRUNCATE checkpoint must wait until no reader uses the
	// -wal file, and SQLite waits by sleeping in its busy handler, so under a
	// steady stream of reads it could wait out the whole busy timeout; the
	// gate instead lets the reads in flight finish and holds new ones back
	// for the millisecond or so the checkpoint takes.
	gate sync.RWMutex
}

var _ storage.Store = (*Store)(nil)

// ErrSchemaTooNew means the database was written by a newer build whose
// schema this build does not know; it is left untouched.
var ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this build supports")

// ErrNotStore means the file is a SQLite database but not an mlskit store.
var ErrNotStore = errors.New("sqlite: database is not an mlskit store")

// Open opens the store in the database file at path, creating it if it does
// not exist and migrating its schema if it was written by an older build.
func Open(path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.MaxReaders <= 0 {
		o.MaxReaders = 4
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	// Every pragma here is per connection (journal_mode is also persistent),
	// so it goes in the DSN, which the driver applies to each connection the
	// pool opens.
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	if o.insecureDelete {
		q.Add("_pragma", "secure_delete(OFF)")
	} else {
		q.Add("_pragma", "secure_delete(ON)")
	}
	// Statement journals and other temporary files can hold copies of old
	// pages; kept in memory, they never reach the disk.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_txlock", "immediate")
	// A file: URI so that any character in the path is escaped rather than
	// read as the start of the parameters.
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: filepath.ToSlash(abs), RawQuery: q.Encode()}).String()

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.SetMaxOpenConns(o.MaxReaders + 1)
	db.SetMaxIdleConns(o.MaxReaders + 1)
	s := &Store{db: db, opts: o}
	if err := s.init(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// init checks that the pragmas the store's guarantees rest on took effect and
// brings the schema up to date.
func (s *Store) init(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	defer conn.Close()
	var mode string
	var syncLevel, secure int
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncLevel); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA secure_delete").Scan(&secure); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if mode != "wal" || syncLevel != 2 || (secure != 1) != s.opts.insecureDelete {
		return fmt.Errorf("sqlite: open: settings did not take effect (journal_mode=%s synchronous=%d secure_delete=%d)",
			mode, syncLevel, secure)
	}
	return migrate(ctx, conn)
}

func (s *Store) rlock() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return storage.ErrClosed
	}
	return nil
}

// rlockRead is rlock for a read: it also enters the checkpoint gate. Release
// with runlockRead.
func (s *Store) rlockRead() error {
	if err := s.rlock(); err != nil {
		return err
	}
	s.gate.RLock()
	return nil
}

func (s *Store) runlockRead() {
	s.gate.RUnlock()
	s.mu.RUnlock()
}

// queryBlob runs a query returning one blob, mapping no row to ErrNotFound.
func (s *Store) queryBlob(ctx context.Context, what, query string, args ...any) ([]byte, error) {
	if err := s.rlockRead(); err != nil {
		return nil, err
	}
	defer s.runlockRead()
	var v []byte
	err := s.db.QueryRowContext(ctx, query, args...).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: %s: %w", what, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return v, nil
}

// LoadGroup implements storage.Store.
func (s *Store) LoadGroup(ctx context.Context, groupID []byte) ([]byte, uint64, error) {
	if err := s.rlockRead(); err != nil {
		return nil, 0, err
	}
	defer s.runlockRead()
	var state []byte
	var epoch int64
	err := s.db.QueryRowContext(ctx, "SELECT state, epoch FROM groups WHERE id = ?", groupID).Scan(&state, &epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("sqlite: group: %w", storage.ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: group: %w", err)
	}
	return state, uint64(epoch), nil
}

// LoadEpoch implements storage.Store.
func (s *Store) LoadEpoch(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error) {
	return s.queryBlob(ctx, "epoch", "SELECT data FROM epochs WHERE group_id = ? AND epoch = ?", groupID, int64(epoch))
}

// MessageKey implements storage.Store.
func (s *Store) MessageKey(ctx context.Context, groupID []byte, epoch uint64, keyID []byte) ([]byte, error) {
	return s.queryBlob(ctx, "message key",
		"SELECT data FROM message_keys WHERE group_id = ? AND epoch = ? AND key_id = ?", groupID, int64(epoch), keyID)
}

// KeyPackage implements storage.Store.
func (s *Store) KeyPackage(ctx context.Context, ref []byte) ([]byte, error) {
	return s.queryBlob(ctx, "key package", "SELECT data FROM key_packages WHERE ref = ?", ref)
}

// PSK implements storage.Store.
func (s *Store) PSK(ctx context.Context, id []byte) ([]byte, error) {
	return s.queryBlob(ctx, "psk", "SELECT data FROM psks WHERE id = ?", id)
}

// AppRecord implements storage.Store.
func (s *Store) AppRecord(ctx context.Context, key []byte) ([]byte, error) {
	return s.queryBlob(ctx, "application record", "SELECT data FROM app_records WHERE key = ?", key)
}

// PendingCommit implements storage.Store.
func (s *Store) PendingCommit(ctx context.Context, groupID []byte) ([]byte, error) {
	return s.queryBlob(ctx, "pending commit", "SELECT data FROM pending_commits WHERE group_id = ?", groupID)
}

// ListGroups implements storage.Store. BLOBs sort by memcmp, which is the
// byte order the interface promises.
func (s *Store) ListGroups(ctx context.Context) ([][]byte, error) {
	if err := s.rlockRead(); err != nil {
		return nil, err
	}
	defer s.runlockRead()
	rows, err := s.db.QueryContext(ctx, "SELECT id FROM groups ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("sqlite: list groups: %w", err)
	}
	defer rows.Close()
	ids := [][]byte{}
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite: list groups: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list groups: %w", err)
	}
	return ids, nil
}

// txn is one write transaction with the fault hook and the record of whether
// anything was deleted or overwritten.
type txn struct {
	ctx   context.Context
	tx    execer
	step  int
	wiped bool // some stored bytes were deleted or overwritten
}

// execer is a *sql.Tx, or a *sql.DB under the nonAtomic test knob.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// exec runs one step of the batch: the fault hook, then the statement. It
// returns the number of rows changed.
func (t *txn) exec(query string, args ...any) (int64, error) {
	if err := storage.Fault(t.ctx, t.step); err != nil {
		return 0, err
	}
	t.step++
	res, err := t.tx.ExecContext(t.ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("sqlite: write: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: write: %w", err)
	}
	return n, nil
}

// del runs a DELETE and notes whether it removed anything.
func (t *txn) del(query string, args ...any) error {
	n, err := t.exec(query, args...)
	if n > 0 {
		t.wiped = true
	}
	return err
}

// put inserts a row, or updates it if the key exists (insert first, so that
// a new row, the common case, costs one statement and the store knows
// whether old bytes were overwritten).
func (t *txn) put(insert, update string, args ...any) error {
	n, err := t.exec(insert, args...)
	if err != nil || n > 0 {
		return err
	}
	t.wiped = true
	n, err = t.exec(update, args...)
	if err == nil && n != 1 {
		err = fmt.Errorf("sqlite: write: update after a conflicting insert changed %d rows", n)
	}
	return err
}

// Write implements storage.Store: the whole batch is one IMMEDIATE
// transaction, rolled back on any error.
func (s *Store) Write(ctx context.Context, b *storage.Batch) error {
	if err := b.Validate(); err != nil {
		return err
	}
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.update(ctx, func(t *txn) error { return apply(t, b) })
}

// DeleteGroup implements storage.Store.
func (s *Store) DeleteGroup(ctx context.Context, groupID []byte) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.update(ctx, func(t *txn) error {
		n, err := t.exec("DELETE FROM groups WHERE id = ?", groupID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlite: group: %w", storage.ErrNotFound)
		}
		t.wiped = true
		for _, q := range []string{
			"DELETE FROM epochs WHERE group_id = ?",
			"DELETE FROM message_keys WHERE group_id = ?",
			"DELETE FROM pending_commits WHERE group_id = ?",
		} {
			if err := t.del(q, groupID); err != nil {
				return err
			}
		}
		return nil
	})
}

// update runs f in a write transaction and, if f deleted or overwrote
// anything, checkpoints so the old bytes leave the -wal file. The caller holds
// wmu.
func (s *Store) update(ctx context.Context, f func(*txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.opts.nonAtomic {
		t := &txn{ctx: ctx, tx: s.db}
		err := f(t)
		if err == nil && !s.opts.noCheckpoint {
			err = s.checkpoint(ctx)
		}
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	t := &txn{ctx: ctx, tx: tx}
	if err := f(t); err != nil {
		tx.Rollback()
		return err
	}
	if err := storage.Fault(ctx, t.step); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if t.wiped {
		s.dirty = true
	}
	if s.dirty && !s.opts.noCheckpoint {
		// The batch is committed whatever happens here; a checkpoint that
		// cannot finish now is retried on the next write and at Close.
		_ = s.checkpoint(context.WithoutCancel(ctx))
	}
	return nil
}

// apply stages a validated batch in t, deletes before puts.
func apply(t *txn, b *storage.Batch) error {
	g := b.GroupID
	if b.GroupScoped() {
		var exists bool
		if err := t.tx.QueryRowContext(t.ctx, "SELECT EXISTS (SELECT 1 FROM groups WHERE id = ?)", g).Scan(&exists); err != nil {
			return fmt.Errorf("sqlite: write: %w", err)
		}
		if !exists && b.State == nil {
			return fmt.Errorf("sqlite: group: %w", storage.ErrNotFound)
		}
	}
	if b.State != nil {
		if err := t.put(
			"INSERT INTO groups (id, epoch, state) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
			"UPDATE groups SET epoch = ?2, state = ?3 WHERE id = ?1",
			g, int64(b.Epoch), b.State); err != nil {
			return err
		}
	}
	for _, e := range b.DeleteEpochs {
		if err := t.del("DELETE FROM epochs WHERE group_id = ? AND epoch = ?", g, int64(e)); err != nil {
			return err
		}
		// Deleting a past epoch deletes the keys kept for it (storage.Batch).
		if err := t.del("DELETE FROM message_keys WHERE group_id = ? AND epoch = ?", g, int64(e)); err != nil {
			return err
		}
	}
	for _, e := range b.Epochs {
		if err := t.put(
			"INSERT INTO epochs (group_id, epoch, data) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
			"UPDATE epochs SET data = ?3 WHERE group_id = ?1 AND epoch = ?2",
			g, int64(e.Epoch), e.Data); err != nil {
			return err
		}
	}
	for _, k := range b.DeleteMessageKeys {
		if err := t.del("DELETE FROM message_keys WHERE group_id = ? AND epoch = ? AND key_id = ?",
			g, int64(k.Epoch), k.ID); err != nil {
			return err
		}
	}
	for _, k := range b.MessageKeys {
		if err := t.put(
			"INSERT INTO message_keys (group_id, epoch, key_id, data) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
			"UPDATE message_keys SET data = ?4 WHERE group_id = ?1 AND epoch = ?2 AND key_id = ?3",
			g, int64(k.Epoch), k.ID, k.Data); err != nil {
			return err
		}
	}
	if b.ClearPendingCommit {
		if err := t.del("DELETE FROM pending_commits WHERE group_id = ?", g); err != nil {
			return err
		}
	}
	if b.PendingCommit != nil {
		if err := t.put(
			"INSERT INTO pending_commits (group_id, data) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
			"UPDATE pending_commits SET data = ?2 WHERE group_id = ?1",
			g, b.PendingCommit); err != nil {
			return err
		}
	}
	for _, r := range b.DeleteKeyPackages {
		if err := t.del("DELETE FROM key_packages WHERE ref = ?", r); err != nil {
			return err
		}
	}
	for _, r := range b.KeyPackages {
		if err := t.put(
			"INSERT INTO key_packages (ref, data) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
			"UPDATE key_packages SET data = ?2 WHERE ref = ?1",
			r.Key, r.Value); err != nil {
			return err
		}
	}
	for _, id := range b.DeletePSKs {
		if err := t.del("DELETE FROM psks WHERE id = ?", id); err != nil {
			return err
		}
	}
	for _, r := range b.PSKs {
		if err := t.put(
			"INSERT INTO psks (id, data) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
			"UPDATE psks SET data = ?2 WHERE id = ?1",
			r.Key, r.Value); err != nil {
			return err
		}
	}
	for _, k := range b.DeleteAppRecords {
		if err := t.del("DELETE FROM app_records WHERE key = ?", k); err != nil {
			return err
		}
	}
	for _, r := range b.AppRecords {
		if err := t.put(
			"INSERT INTO app_records (key, data) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
			"UPDATE app_records SET data = ?2 WHERE key = ?1",
			r.Key, r.Value); err != nil {
			return err
		}
	}
	return nil
}

// errCheckpointBusy means a checkpoint could not complete because another
// connection still reads an older snapshot.
var errCheckpointBusy = errors.New("sqlite: checkpoint incomplete: database busy")

// checkpoint copies every committed page into the database file and empties
// the -wal file. The caller holds wmu.
func (s *Store) checkpoint(ctx context.Context) error {
	s.gate.Lock()
	defer s.gate.Unlock()
	var busy, logFrames, done int
	err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
	if err != nil {
		return fmt.Errorf("sqlite: checkpoint: %w", err)
	}
	if busy != 0 {
		return errCheckpointBusy
	}
	s.dirty = false
	return nil
}

// Checkpoint moves all committed changes into the database file and empties
// the -wal file, so that no bytes a Write deleted remain in either. Writes
// that delete do this themselves; call Checkpoint to retry one that could not
// complete because another process was reading, for example before taking a
// backup of the file.
func (s *Store) Checkpoint(ctx context.Context) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.checkpoint(ctx)
}

// Close checkpoints if a deleting write's checkpoint is still owed and closes
// the database. Operations in flight finish first.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.dirty && !s.opts.noCheckpoint {
		errs = append(errs, s.checkpoint(context.Background()))
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}
