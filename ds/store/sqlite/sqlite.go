// Package sqlite is the embedded default storage engine of mlsd, on
// modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode with synchronous=FULL: an acknowledged write
// survives a crash or power loss (with synchronous=NORMAL, WAL can lose the
// last transactions on power loss). SQLite has one writer at a time, so all
// writes go through a single connection, which also serialises each group's
// head without further locking; reads use a separate pool and see committed
// snapshots concurrently. Concurrent writes share one transaction and one
// fsync (group commit, Store.tx).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mlskit/mlskit/ds/store"
	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Store is a SQLite-backed store.Store.
type Store struct {
	w, r *sql.DB

	batch store.Batcher[write] // group commit of every write
	stmts map[string]*sql.Stmt // hot statements, prepared on w
	// heads holds, inside one write transaction, the group heads its
	// message appends read and moved (see appendMessage); only the
	// batch's writer touches it, and flushHeads writes it back.
	heads  map[string]*batchHead
	split  atomic.Uint64     // batches that failed and went again op by op
	usage  store.UsageBuffer // usage totals, written behind
	totals usageTotals       // and kept in memory once read

	mu       sync.Mutex
	watchers map[int]func(store.Notification)
	nextID   int
}

var _ store.Store = (*Store)(nil)

const schema = `
CREATE TABLE IF NOT EXISTS groups (
	group_id BLOB PRIMARY KEY,
	epoch INTEGER NOT NULL,
	head_seq INTEGER NOT NULL,
	head_hash BLOB NOT NULL,
	group_info BLOB, -- unused: in group_infos (moved there by Open)
	prio_client TEXT NOT NULL DEFAULT '',
	prio_epoch INTEGER NOT NULL DEFAULT 0,
	prio_until INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	public_handshakes INTEGER NOT NULL DEFAULT 0,
	external_joins INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- The published GroupInfo, apart from the head that every append reads
-- and writes: it holds the ratchet tree (megabytes in a large group), and
-- SQLite reads a whole row to update one column.
CREATE TABLE IF NOT EXISTS group_infos (
	group_id BLOB PRIMARY KEY,
	group_info BLOB NOT NULL
) WITHOUT ROWID;
-- records is a table with rowids: SQLite keeps a row of a WITHOUT ROWID
-- table on its page only up to about a quarter of the page and moves the
-- rest to an overflow page of its own, so there a 1 KiB message took 4.7 KB
-- of disk; here 1.5 KB (TestRecordsLayout). Databases made before keep
-- their WITHOUT ROWID table, which every statement here also serves.
CREATE TABLE IF NOT EXISTS records (
	group_id BLOB NOT NULL,
	seq INTEGER NOT NULL,
	epoch INTEGER NOT NULL,
	kind INTEGER NOT NULL,
	wire_format INTEGER NOT NULL,
	sender TEXT NOT NULL,
	recipients BLOB,
	body BLOB NOT NULL,
	body_hash BLOB NOT NULL,
	prev_hash BLOB NOT NULL,
	chain_hash BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (group_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS records_body ON records (group_id, body_hash);
CREATE TABLE IF NOT EXISTS commits (
	group_id BLOB NOT NULL,
	epoch INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	PRIMARY KEY (group_id, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
	group_id BLOB NOT NULL,
	client_id TEXT NOT NULL,
	acked_seq INTEGER NOT NULL,
	joined_seq INTEGER NOT NULL DEFAULT 0,
	left_seq INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (group_id, client_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_client ON members (client_id);
CREATE TABLE IF NOT EXISTS key_packages (
	ref BLOB PRIMARY KEY,
	owner TEXT NOT NULL,
	suite INTEGER NOT NULL,
	last_resort INTEGER NOT NULL,
	used INTEGER NOT NULL DEFAULT 0,
	data BLOB NOT NULL,
	not_after INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	ord INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS key_packages_owner ON key_packages (owner, suite, last_resort, ord);
CREATE TABLE IF NOT EXISTS challenges (
	challenge BLOB PRIMARY KEY,
	expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
	token_hash BLOB PRIMARY KEY,
	client_id TEXT NOT NULL,
	sig_key BLOB NOT NULL,
	expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS client_keys (
	client_id TEXT PRIMARY KEY,
	sig_key BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims (
	ref BLOB NOT NULL,
	claimer TEXT NOT NULL,
	owner TEXT NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (ref, claimer)
) WITHOUT ROWID;
`

// upgrades add the columns of later versions to an older database; a
// "duplicate column" error means it is already there.
var upgrades = []string{
	`ALTER TABLE groups ADD COLUMN public_handshakes INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE groups ADD COLUMN external_joins INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE members ADD COLUMN joined_seq INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE members ADD COLUMN left_seq INTEGER NOT NULL DEFAULT 0`,
}

// moveGroupInfos moves GroupInfos that an older version kept in the groups
// table into group_infos, in one transaction. A database already moved
// has none left there, so this is a no-op on every later Open.
func moveGroupInfos(w *sql.DB) error {
	tx, err := w.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO group_infos (group_id, group_info)
		SELECT group_id, group_info FROM groups WHERE group_info IS NOT NULL
		ON CONFLICT (group_id) DO UPDATE SET group_info = excluded.group_info`); err != nil {
		return err
	}
	if _, err := tx.Exec(`UPDATE groups SET group_info = NULL WHERE group_info IS NOT NULL`); err != nil {
		return err
	}
	return tx.Commit()
}

// Open opens (creating if needed) the database mlsd.db in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	path := filepath.Join(dir, "mlsd.db")
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if _, err := w.Exec(schema + quotaSchema); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: creating schema: %w", err)
	}
	for _, u := range upgrades {
		if _, err := w.Exec(u); err != nil && !strings.Contains(err.Error(), "duplicate column") {
			w.Close()
			return nil, fmt.Errorf("sqlite: upgrading schema: %w", err)
		}
	}
	if err := moveGroupInfos(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: upgrading schema: %w", err)
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s := &Store{w: w, r: r, watchers: map[int]func(store.Notification){}, stmts: map[string]*sql.Stmt{}, heads: map[string]*batchHead{}}
	for _, q := range hotStatements {
		st, err := w.Prepare(q)
		if err != nil {
			r.Close()
			w.Close()
			return nil, fmt.Errorf("sqlite: preparing %q: %w", q, err)
		}
		s.stmts[q] = st
	}
	s.batch.Run = s.runBatch
	s.usage.Write = s.writeUsage
	s.usage.Gather = store.UsageGather
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.usage.Flush()
	return errors.Join(s.r.Close(), s.w.Close())
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func (s *Store) notify(ns ...store.Notification) {
	s.mu.Lock()
	fs := make([]func(store.Notification), 0, len(s.watchers))
	for _, f := range s.watchers {
		fs = append(fs, f)
	}
	s.mu.Unlock()
	for _, n := range ns {
		for _, f := range fs {
			f(n)
		}
	}
}

// Watch implements store.Store. SQLite serves one process, so notifications
// are local.
func (s *Store) Watch(ctx context.Context, f func(store.Notification)) error {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.watchers[id] = f
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	delete(s.watchers, id)
	s.mu.Unlock()
	return nil
}

// txFunc is one write: it runs inside a transaction it does not own, with
// the context it is given (not its caller's: a caller that goes away must
// not interrupt the shared transaction, which SQLite would roll back whole).
type txFunc func(ctx context.Context, tx *sql.Tx) error

// write is one queued write.
type write struct {
	fn txFunc
	// message: fn is appendMessage's, which runs without a savepoint and
	// keeps its group's head in Store.heads.
	message bool
}

// batchHead is a group's head as the transaction's message appends left
// it; dirty says it moved since it was read.
type batchHead struct {
	h     *store.GroupHead
	dirty bool
}

// tx runs f in a write transaction, committing only if f succeeds.
//
// Group commit: concurrent writes share one transaction and so one fsync
// (store.Batcher). Each runs inside its own SAVEPOINT (a message append
// needs none: see appendMessage), so one that fails is rolled back alone and
// the others still commit, exactly as if each had run alone in the order of
// the batch. tx returns only after the transaction holding f committed:
// acknowledged means durable.
func (s *Store) tx(ctx context.Context, f txFunc) error {
	return s.batch.Do(ctx, write{fn: f})
}

// BatchStats implements store.BatchStats.
func (s *Store) BatchStats() (writes, transactions uint64) { return s.batch.Stats() }

// errBatch says a shared transaction failed before COMMIT: nothing of it
// was written, and each write is tried again alone.
var errBatch = errors.New("sqlite: batch failed")

func (s *Store) runBatch(ops []*store.Op[write]) {
	ctx := context.WithoutCancel(ops[0].Ctx)
	if len(ops) == 1 {
		ops[0].Err = s.txAlone(ctx, ops[0].Fn)
		return
	}
	if err := s.txBatch(ctx, ops); errors.Is(err, errBatch) {
		// Rolled back whole (an I/O error, an interrupted statement): the
		// writes go again, each in its own transaction, so one write's
		// failure is never another's.
		s.split.Add(1)
		for _, op := range ops {
			op.Err = s.txAlone(ctx, op.Fn)
		}
	}
}

func (s *Store) txAlone(ctx context.Context, w write) error {
	clear(s.heads)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := w.fn(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := s.flushHeads(ctx, s.prepared(tx)); err != nil {
		tx.Rollback()
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// txBatch runs ops in one transaction, each under a savepoint (a message
// append without one: see appendMessage). It sets each op's Err, or returns
// errBatch when the transaction failed before COMMIT.
func (s *Store) txBatch(ctx context.Context, ops []*store.Op[write]) error {
	clear(s.heads)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return errBatch
	}
	p := s.prepared(tx)
	exec := func(q string) bool {
		_, err := p.ExecContext(ctx, q)
		return err == nil
	}
	for _, op := range ops {
		if op.Fn.message {
			op.Err = op.Fn.fn(ctx, tx)
			if op.Err != nil && !refusedUnwritten(op.Err) {
				// A statement failed: what it left of the transaction
				// is not known, so the batch goes again op by op.
				tx.Rollback()
				return errBatch
			}
			continue
		}
		// Every other write reads the database as it is: the heads the
		// message appends moved are written first.
		if s.flushHeads(ctx, p) != nil || !exec(qSavepointW) {
			tx.Rollback()
			return errBatch
		}
		op.Err = op.Fn.fn(ctx, tx)
		if op.Err != nil && !exec(qRollbackToW) {
			// The transaction itself is gone (SQLite rolls back a whole
			// transaction on some errors): so are the earlier writes.
			tx.Rollback()
			return errBatch
		}
		if !exec(qReleaseW) {
			tx.Rollback()
			return errBatch
		}
	}
	if s.flushHeads(ctx, p) != nil {
		tx.Rollback()
		return errBatch
	}
	if err := tx.Commit(); err != nil {
		// The outcome is unknown: no write of the batch is acknowledged.
		for _, op := range ops {
			if op.Err == nil {
				op.Err = fmt.Errorf("sqlite: commit: %w", err)
			}
		}
	}
	return nil
}

// flushHeads writes the heads the transaction's message appends moved,
// and forgets them all: what runs next reads them from the database.
func (s *Store) flushHeads(ctx context.Context, p prepTx) error {
	for k, b := range s.heads {
		if b.dirty {
			if _, err := p.ExecContext(ctx, qUpdateHead, b.h.Epoch, b.h.HeadSeq, b.h.HeadHash, b.h.ID); err != nil {
				return err
			}
		}
		delete(s.heads, k)
	}
	return nil
}

// refusedUnwritten says err is a refusal by the store's rules, which
// appendMessage returns only with nothing of the append written.
func refusedUnwritten(err error) bool {
	var stale *store.StaleEpochError
	var dup *store.DuplicateError
	return errors.Is(err, store.ErrNotMember) || errors.Is(err, store.ErrNotFound) ||
		errors.As(err, &stale) || errors.As(err, &dup)
}

func (s *Store) PutChallenge(ctx context.Context, c []byte, expires time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// Expired challenges are swept on the way.
		if _, err := tx.ExecContext(ctx, `DELETE FROM challenges WHERE expires < ?`, ms(time.Now())-60_000); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO challenges (challenge, expires) VALUES (?, ?)`, c, ms(expires)); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	})
}

func (s *Store) ConsumeChallenge(ctx context.Context, c []byte, now time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM challenges WHERE challenge = ? AND expires >= ?`, c, ms(now))
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return store.ErrNotFound
		}
		return nil
	})
}

func (s *Store) BindClientKey(ctx context.Context, clientID string, key []byte) error {
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var have []byte
		err := tx.QueryRowContext(ctx, `SELECT sig_key FROM client_keys WHERE client_id = ?`, clientID).Scan(&have)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, `INSERT INTO client_keys (client_id, sig_key) VALUES (?, ?)`, clientID, key)
			if err != nil {
				return fmt.Errorf("sqlite: %w", err)
			}
			return nil
		case err != nil:
			return fmt.Errorf("sqlite: %w", err)
		case string(have) != string(key):
			return store.ErrKeyBound
		}
		return nil
	})
}

func (s *Store) PutSession(ctx context.Context, tokenHash []byte, sess store.Session) error {
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires < ?`, ms(time.Now())); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, client_id, sig_key, expires) VALUES (?, ?, ?, ?)`,
			tokenHash, sess.ClientID, sess.SignatureKey, ms(sess.Expires))
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	})
}

func (s *Store) Session(ctx context.Context, tokenHash []byte, now time.Time) (store.Session, error) {
	var sess store.Session
	var exp int64
	err := s.r.QueryRowContext(ctx, `SELECT client_id, sig_key, expires FROM sessions WHERE token_hash = ? AND expires >= ?`,
		tokenHash, ms(now)).Scan(&sess.ClientID, &sess.SignatureKey, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return sess, store.ErrNotFound
	}
	if err != nil {
		return sess, fmt.Errorf("sqlite: %w", err)
	}
	sess.Expires = time.UnixMilli(exp)
	return sess, nil
}

func (s *Store) PutKeyPackage(ctx context.Context, kp store.KeyPackage) error {
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM key_packages WHERE ref = ?`, kp.Ref).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if n > 0 {
			return store.ErrDuplicate
		}
		if kp.LastResort {
			if _, err := tx.ExecContext(ctx, `DELETE FROM key_packages WHERE owner = ? AND suite = ? AND last_resort = 1`, kp.Owner, kp.Suite); err != nil {
				return fmt.Errorf("sqlite: %w", err)
			}
		}
		now := time.Now()
		_, err := tx.ExecContext(ctx, `INSERT INTO key_packages (ref, owner, suite, last_resort, data, not_after, created_at, ord)
			VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(ord), 0) + 1 FROM key_packages))`,
			kp.Ref, kp.Owner, kp.Suite, kp.LastResort, kp.Data, ms(kp.NotAfter), ms(now))
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	})
}

func (s *Store) ClaimKeyPackage(ctx context.Context, claimer, owner string, suite uint16, now time.Time) (store.KeyPackage, error) {
	kp := store.KeyPackage{Owner: owner, Suite: suite}
	var notAfter int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		kp.LastResort = false // a batch that failed runs this again alone
		// Expired KeyPackages are dropped on the way (RFC 9420, Section 10).
		if _, err := tx.ExecContext(ctx, `DELETE FROM key_packages WHERE owner = ? AND suite = ? AND last_resort = 0 AND not_after < ?`, owner, suite, ms(now)); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM claims WHERE expires < ?`, ms(now)); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		claim := func() error {
			_, err := tx.ExecContext(ctx, `INSERT INTO claims (ref, claimer, owner, expires) VALUES (?, ?, ?, ?)
				ON CONFLICT (ref, claimer) DO UPDATE SET expires = excluded.expires`, kp.Ref, claimer, owner, ms(now.Add(store.ClaimTTL)))
			if err != nil {
				return fmt.Errorf("sqlite: %w", err)
			}
			return nil
		}
		err := tx.QueryRowContext(ctx, `DELETE FROM key_packages WHERE ref = (
				SELECT ref FROM key_packages WHERE owner = ? AND suite = ? AND last_resort = 0 ORDER BY ord LIMIT 1)
			RETURNING ref, data, not_after`, owner, suite).Scan(&kp.Ref, &kp.Data, &notAfter)
		if err == nil {
			return claim()
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: %w", err)
		}
		// Only the last resort is left: hand it out, keep it, and mark it
		// used so its owner is told to replace it.
		err = tx.QueryRowContext(ctx, `UPDATE key_packages SET used = 1 WHERE owner = ? AND suite = ? AND last_resort = 1 AND not_after >= ?
			RETURNING ref, data, not_after`, owner, suite, ms(now)).Scan(&kp.Ref, &kp.Data, &notAfter)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		kp.LastResort = true
		return claim()
	})
	if err != nil {
		return store.KeyPackage{}, err
	}
	kp.NotAfter = time.UnixMilli(notAfter)
	s.notify(store.Notification{ClientID: owner})
	return kp, nil
}

func (s *Store) Claims(ctx context.Context, refs [][]byte, now time.Time) ([]store.Claim, error) {
	var out []store.Claim
	for _, ref := range refs {
		rows, err := s.r.QueryContext(ctx, `SELECT claimer, owner FROM claims WHERE ref = ? AND expires >= ? ORDER BY claimer`, ref, ms(now))
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		for rows.Next() {
			c := store.Claim{Ref: ref}
			if err := rows.Scan(&c.Claimer, &c.Owner); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: %w", err)
			}
			out = append(out, c)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	return out, nil
}

func (s *Store) KeyPackageStock(ctx context.Context, owner string, now time.Time) ([]store.Stock, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT suite,
			sum(CASE WHEN last_resort = 0 AND not_after >= ? THEN 1 ELSE 0 END),
			max(last_resort), max(CASE WHEN last_resort = 1 THEN used ELSE 0 END)
		FROM key_packages WHERE owner = ? GROUP BY suite ORDER BY suite`, ms(now), owner)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	var out []store.Stock
	for rows.Next() {
		var st store.Stock
		if err := rows.Scan(&st.Suite, &st.Count, &st.HasLastResort, &st.LastResortUsed); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

func (s *Store) CreateGroup(ctx context.Context, groupID []byte, creator string, groupInfo []byte, policy store.Policy, now time.Time) (store.Group, error) {
	g := store.Group{ID: groupID, HeadHash: store.GenesisHash(groupID), GroupInfo: groupInfo, Policy: policy}
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO groups (group_id, epoch, head_seq, head_hash, created_at, public_handshakes, external_joins)
			VALUES (?, 0, 0, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, groupID, g.HeadHash, ms(now), policy.PublicHandshakes, policy.ExternalJoins)
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return store.ErrExists
		}
		if groupInfo != nil {
			if _, err := tx.ExecContext(ctx, qPutGroupInfo, groupID, groupInfo); err != nil {
				return fmt.Errorf("sqlite: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO members (group_id, client_id, acked_seq) VALUES (?, ?, 0)`, groupID, creator); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.Group{}, err
	}
	s.notify(store.Notification{ClientID: creator})
	return g, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// The statements on every append's path, prepared once on the writer
// connection: parsing them again for each append cost more CPU than
// running them.
const (
	qHead = `SELECT g.group_id, g.epoch, g.head_seq, g.head_hash, i.group_info, g.prio_client, g.prio_epoch, g.prio_until,
		g.public_handshakes, g.external_joins FROM groups g LEFT JOIN group_infos i ON i.group_id = g.group_id WHERE g.group_id = ?`
	// qHeadOnly is qHead without the GroupInfo (Store.Head).
	qHeadOnly = `SELECT group_id, epoch, head_seq, head_hash, prio_client, prio_epoch, prio_until,
		public_handshakes, external_joins FROM groups WHERE group_id = ?`
	// qHeadMember is qHead without the published GroupInfo, and whether
	// the sender is a current member, in one statement. An append does
	// not read the GroupInfo (it holds the ratchet tree: megabytes in a
	// large group) and writes it only when its commit carries a new one
	// (qPutGroupInfo): a message costs the same in any group.
	qHeadMember = `SELECT group_id, epoch, head_seq, head_hash, prio_client, prio_epoch, prio_until,
		public_handshakes, external_joins,
		EXISTS (SELECT 1 FROM members m WHERE m.group_id = groups.group_id AND m.client_id = ? AND m.left_seq = 0)
		FROM groups WHERE group_id = ?`
	qMember       = `SELECT EXISTS (SELECT 1 FROM members WHERE group_id = ? AND client_id = ? AND left_seq = 0)`
	qDup          = `SELECT seq FROM records WHERE group_id = ? AND body_hash = ?`
	qInsertRecord = `INSERT INTO records (` + recordCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpdateHead   = `UPDATE groups SET epoch = ?, head_seq = ?, head_hash = ? WHERE group_id = ?`
	qPutGroupInfo = `INSERT INTO group_infos (group_id, group_info) VALUES (?, ?)
		ON CONFLICT (group_id) DO UPDATE SET group_info = excluded.group_info`
	qSavepointW  = `SAVEPOINT w`
	qRollbackToW = `ROLLBACK TO w`
	qReleaseW    = `RELEASE w`
)

var hotStatements = []string{qHead, qHeadMember, qMember, qDup, qInsertRecord, qUpdateHead, qPutGroupInfo, qSavepointW, qRollbackToW, qReleaseW}

// prepTx runs the hot statements prepared, others as given.
type prepTx struct {
	*sql.Tx
	stmts map[string]*sql.Stmt
}

func (s *Store) prepared(tx *sql.Tx) prepTx { return prepTx{tx, s.stmts} }

func (p prepTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st, ok := p.stmts[q]; ok {
		return p.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return p.Tx.QueryRowContext(ctx, q, args...)
}

func (p prepTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st, ok := p.stmts[q]; ok {
		return p.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return p.Tx.ExecContext(ctx, q, args...)
}

func loadHead(ctx context.Context, q querier, groupID []byte) (*store.GroupHead, error) {
	h := &store.GroupHead{}
	var until int64
	err := q.QueryRowContext(ctx, qHead, groupID).Scan(&h.ID, &h.Epoch, &h.HeadSeq, &h.HeadHash, &h.GroupInfo,
		&h.PriorityClient, &h.PriorityEpoch, &until, &h.Policy.PublicHandshakes, &h.Policy.ExternalJoins)
	return scannedHead(h, until, err)
}

// loadHeadMember is loadHead without the GroupInfo (left nil), and
// whether client is a current member.
func loadHeadMember(ctx context.Context, q querier, groupID []byte, client string) (*store.GroupHead, bool, error) {
	h := &store.GroupHead{}
	var until int64
	var member bool
	err := q.QueryRowContext(ctx, qHeadMember, client, groupID).Scan(&h.ID, &h.Epoch, &h.HeadSeq, &h.HeadHash,
		&h.PriorityClient, &h.PriorityEpoch, &until, &h.Policy.PublicHandshakes, &h.Policy.ExternalJoins, &member)
	h, err = scannedHead(h, until, err)
	return h, member, err
}

func scannedHead(h *store.GroupHead, until int64, err error) (*store.GroupHead, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	h.PriorityUntil = time.UnixMilli(until)
	return h, nil
}

func (s *Store) Head(ctx context.Context, groupID []byte) (store.Group, error) {
	h := &store.GroupHead{}
	var until int64
	err := s.r.QueryRowContext(ctx, qHeadOnly, groupID).Scan(&h.ID, &h.Epoch, &h.HeadSeq, &h.HeadHash,
		&h.PriorityClient, &h.PriorityEpoch, &until, &h.Policy.PublicHandshakes, &h.Policy.ExternalJoins)
	if h, err = scannedHead(h, until, err); err != nil {
		return store.Group{}, err
	}
	return h.Group, nil
}

func (s *Store) Group(ctx context.Context, groupID []byte) (store.Group, error) {
	h, err := loadHead(ctx, s.r, groupID)
	if err != nil {
		return store.Group{}, err
	}
	return h.Group, nil
}

// isUnique says err is a UNIQUE constraint failure (on records, only
// records_body can fail: seq comes from the head).
func isUnique(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

const recordCols = `group_id, seq, epoch, kind, wire_format, sender, recipients, body, body_hash, prev_hash, chain_hash, created_at`

type scanner interface{ Scan(...any) error }

func scanRecord(sc scanner) (store.Record, error) {
	var r store.Record
	var recips []byte
	var t int64
	if err := sc.Scan(&r.GroupID, &r.Seq, &r.Epoch, &r.Kind, &r.WireFormat, &r.Sender, &recips, &r.Body, &r.BodyHash,
		&r.PrevHash, &r.ChainHash, &t); err != nil {
		return r, err
	}
	var err error
	if r.Recipients, err = store.DecodeRecipients(recips); err != nil {
		return r, err
	}
	r.Time = time.UnixMilli(t)
	return r, nil
}

func commitRecord(ctx context.Context, q querier, groupID []byte, epoch uint64) (store.Record, error) {
	r, err := scanRecord(q.QueryRowContext(ctx, `SELECT `+recordCols+` FROM records WHERE group_id = ? AND seq =
		(SELECT seq FROM commits WHERE group_id = ? AND epoch = ?)`, groupID, groupID, epoch))
	if errors.Is(err, sql.ErrNoRows) {
		return r, store.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("sqlite: %w", err)
	}
	return r, nil
}

func (s *Store) CommitRecord(ctx context.Context, groupID []byte, epoch uint64) (store.Record, error) {
	return commitRecord(ctx, s.r, groupID, epoch)
}

func (s *Store) Append(ctx context.Context, a store.Append) ([]store.Record, error) {
	if err := store.ValidateAppend(&a); err != nil {
		return nil, err
	}
	if !a.Commit && !a.ExternalJoin && len(a.Entries) == 1 && a.GroupInfo == nil &&
		len(a.AddMembers)+len(a.RemoveMembers)+len(a.UseClaims) == 0 {
		return s.appendMessage(ctx, a)
	}
	var recs []store.Record
	var notes []store.Notification
	err := s.tx(ctx, func(ctx context.Context, wtx *sql.Tx) error {
		notes = notes[:0] // a batch that failed runs this again alone
		tx := s.prepared(wtx)
		// The single writer connection serialises this transaction with
		// every other write: the head read here cannot change under us.
		h, member, err := loadHeadMember(ctx, tx, a.GroupID, a.Sender)
		if err != nil {
			return err
		}
		if !a.ExternalJoin && !member {
			return store.ErrNotMember
		}
		if err := store.CheckEpoch(h, &a, func(e uint64) (store.Record, error) { return commitRecord(ctx, tx, a.GroupID, e) }); err != nil {
			return err
		}
		if err := store.CheckPriority(h, &a); err != nil {
			return err
		}
		recs = store.BuildRecords(h, &a)
		for i := range recs {
			// The caller's savepoint (or transaction) drops what was
			// inserted before a failure.
			if err := insertRecord(ctx, tx, &recs[i]); err != nil {
				return err
			}
		}
		last := recs[len(recs)-1]
		epoch := h.Epoch
		if a.Commit {
			epoch++
			if _, err := tx.ExecContext(ctx, `INSERT INTO commits (group_id, epoch, seq) VALUES (?, ?, ?)`, a.GroupID, a.Epoch, recs[0].Seq); err != nil {
				return fmt.Errorf("sqlite: %w", err)
			}
			add := a.AddMembers
			if a.ExternalJoin {
				add = append(add[:len(add):len(add)], a.Sender)
			}
			for _, c := range add {
				// Added members start after the commit: they receive
				// their Welcome and what follows.
				// A removed member added again starts over.
				if _, err := tx.ExecContext(ctx, `INSERT INTO members (group_id, client_id, acked_seq, joined_seq, left_seq) VALUES (?, ?, ?, ?, 0)
					ON CONFLICT (group_id, client_id) DO UPDATE SET acked_seq = excluded.acked_seq, joined_seq = excluded.joined_seq, left_seq = 0
					WHERE left_seq <> 0`, a.GroupID, c, recs[0].Seq, recs[0].Seq); err != nil {
					return fmt.Errorf("sqlite: %w", err)
				}
				notes = append(notes, store.Notification{ClientID: c})
			}
			for _, c := range a.RemoveMembers {
				// The removed member still receives this commit.
				if _, err := tx.ExecContext(ctx, `UPDATE members SET left_seq = ? WHERE group_id = ? AND client_id = ? AND left_seq = 0`,
					recs[0].Seq, a.GroupID, c); err != nil {
					return fmt.Errorf("sqlite: %w", err)
				}
				notes = append(notes, store.Notification{ClientID: c})
			}
			for _, ref := range a.UseClaims {
				if _, err := tx.ExecContext(ctx, `DELETE FROM claims WHERE ref = ? AND claimer = ?`, ref, a.Sender); err != nil {
					return fmt.Errorf("sqlite: %w", err)
				}
			}
		}
		if _, err := tx.ExecContext(ctx, qUpdateHead, epoch, last.Seq, last.ChainHash, a.GroupID); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if a.GroupInfo != nil {
			if _, err := tx.ExecContext(ctx, qPutGroupInfo, a.GroupID, a.GroupInfo); err != nil {
				return fmt.Errorf("sqlite: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Members' changes first: a removed member's stream learns it before
	// it reads past its removal.
	notes = append(notes, store.Notification{GroupID: a.GroupID, Seq: recs[len(recs)-1].Seq})
	s.notify(notes...)
	return recs, nil
}

// appendMessage appends one message that is not a commit (an application
// message or a proposal): most of what a busy server writes, and much of
// it to a few busy groups. So in a shared transaction it costs one INSERT
// beside its membership check. The group's head is read once per
// transaction and kept in s.heads as its messages move it, then written
// back once (flushHeads) before any other kind of write runs and before
// COMMIT. And it needs no savepoint: its one write is the INSERT, which
// SQLite backs out by itself when a constraint refuses it (a duplicate);
// any other failure sends the whole batch back op by op (txBatch).
func (s *Store) appendMessage(ctx context.Context, a store.Append) ([]store.Record, error) {
	var recs []store.Record
	err := s.batch.Do(ctx, write{message: true, fn: func(ctx context.Context, wtx *sql.Tx) error {
		tx := s.prepared(wtx)
		b := s.heads[string(a.GroupID)]
		var member bool
		if b == nil {
			h, m, err := loadHeadMember(ctx, tx, a.GroupID, a.Sender)
			if err != nil {
				return err
			}
			b, member = &batchHead{h: h}, m
			s.heads[string(a.GroupID)] = b
		} else if err := tx.QueryRowContext(ctx, qMember, a.GroupID, a.Sender).Scan(&member); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if !member {
			return store.ErrNotMember
		}
		if err := store.CheckEpoch(b.h, &a, func(e uint64) (store.Record, error) { return commitRecord(ctx, tx, a.GroupID, e) }); err != nil {
			return err
		}
		recs = store.BuildRecords(b.h, &a)
		r := &recs[0]
		if err := insertRecord(ctx, tx, r); err != nil {
			return err
		}
		b.h.HeadSeq, b.h.HeadHash, b.dirty = r.Seq, r.ChainHash, true
		return nil
	}})
	if err != nil {
		return nil, err
	}
	s.notify(store.Notification{GroupID: a.GroupID, Seq: recs[0].Seq})
	return recs, nil
}

// insertRecord writes r to the log. A body already in the group's log is
// found by the unique index records_body, at the insert: no lookup before
// it.
func insertRecord(ctx context.Context, tx prepTx, r *store.Record) error {
	_, err := tx.ExecContext(ctx, qInsertRecord,
		r.GroupID, r.Seq, r.Epoch, r.Kind, r.WireFormat, r.Sender, store.EncodeRecipients(r.Recipients), r.Body,
		r.BodyHash, r.PrevHash, r.ChainHash, ms(r.Time))
	if err == nil {
		return nil
	}
	if !isUnique(err) {
		return fmt.Errorf("sqlite: %w", err)
	}
	var seq uint64
	if err := tx.QueryRowContext(ctx, qDup, r.GroupID, r.BodyHash).Scan(&seq); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return &store.DuplicateError{Seq: seq}
}

func (s *Store) Records(ctx context.Context, groupID []byte, after uint64, limit int) ([]store.Record, error) {
	if after >= store.MaxSeq {
		return nil, nil // the driver cannot bind it, and no record is past it
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+recordCols+` FROM records WHERE group_id = ? AND seq > ? ORDER BY seq LIMIT ?`, groupID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *Store) Membership(ctx context.Context, groupID []byte, clientID string) (store.Membership, error) {
	m := store.Membership{GroupID: groupID, ClientID: clientID}
	err := s.r.QueryRowContext(ctx, `SELECT acked_seq, joined_seq, left_seq FROM members WHERE group_id = ? AND client_id = ?`,
		groupID, clientID).Scan(&m.AckedSeq, &m.JoinedSeq, &m.LeftSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return m, store.ErrNotMember
	}
	if err != nil {
		return m, fmt.Errorf("sqlite: %w", err)
	}
	return m, nil
}

func (s *Store) Memberships(ctx context.Context, clientID string) ([]store.Membership, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT group_id, acked_seq, joined_seq, left_seq FROM members WHERE client_id = ? ORDER BY group_id`, clientID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	var out []store.Membership
	for rows.Next() {
		m := store.Membership{ClientID: clientID}
		if err := rows.Scan(&m.GroupID, &m.AckedSeq, &m.JoinedSeq, &m.LeftSeq); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *Store) Members(ctx context.Context, groupID []byte) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT client_id FROM members WHERE group_id = ? AND left_seq = 0 ORDER BY client_id`, groupID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *Store) Ack(ctx context.Context, groupID []byte, clientID string, seq uint64) error {
	seq = min(seq, store.MaxSeq) // the driver cannot bind more; the head caps it anyway
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE members SET acked_seq = max(acked_seq, min(?, (SELECT head_seq FROM groups WHERE group_id = ?),
				CASE left_seq WHEN 0 THEN ? ELSE left_seq END))
			WHERE group_id = ? AND client_id = ?`, seq, groupID, seq, groupID, clientID)
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return store.ErrNotMember
		}
		// A removed member that has its removal is gone for good.
		if _, err := tx.ExecContext(ctx, `DELETE FROM members WHERE group_id = ? AND client_id = ? AND left_seq <> 0 AND acked_seq >= left_seq`,
			groupID, clientID); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	})
}

func (s *Store) SetPriority(ctx context.Context, groupID []byte, clientID string, epoch uint64, until time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE groups SET prio_client = ?, prio_epoch = ?, prio_until = ? WHERE group_id = ? AND epoch <= ?`,
			clientID, epoch, ms(until), groupID, epoch)
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	})
}
