package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mlskit/mlskit/ds/store"
)

// SQLite serves one mlsd process, so its token buckets stay in that
// process's memory; only usage totals (stored-bytes quotas) are kept here.
const quotaSchema = `
CREATE TABLE IF NOT EXISTS usage (
	key BLOB PRIMARY KEY,
	bytes INTEGER NOT NULL
) WITHOUT ROWID;
`

var (
	_ store.UsageCounter  = (*Store)(nil)
	_ store.HealthChecker = (*Store)(nil)
)

// Usage reads a total once and then keeps it in memory: SQLite serves one
// process, so after the first read the total changes only through this
// process's AddUsage.
func (s *Store) Usage(ctx context.Context, key string) (int64, error) {
	if n, ok := s.totals.get(key); ok {
		return n + s.usage.Unwritten(key), nil
	}
	s.totals.load.Lock()
	defer s.totals.load.Unlock()
	if n, ok := s.totals.get(key); ok {
		return n + s.usage.Unwritten(key), nil
	}
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT bytes FROM usage WHERE key = ?`, []byte(key)).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	s.totals.set(key, n)
	return n + s.usage.Unwritten(key), nil
}

// AddUsage is written behind (store.UsageBuffer): it returns at once, and
// the totals are written in one of the next batches.
func (s *Store) AddUsage(ctx context.Context, key string, delta int64) error {
	s.usage.Add(key, delta)
	return nil
}

func (s *Store) writeUsage(ctx context.Context, deltas map[string]int64) error {
	// No total is read from the database while it is being written.
	s.totals.load.Lock()
	defer s.totals.load.Unlock()
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for key, delta := range deltas {
			_, err := tx.ExecContext(ctx, `INSERT INTO usage (key, bytes) VALUES (?, ?)
				ON CONFLICT (key) DO UPDATE SET bytes = bytes + excluded.bytes`, []byte(key), delta)
			if err != nil {
				return fmt.Errorf("sqlite: %w", err)
			}
		}
		return nil
	})
	if err == nil {
		s.totals.add(deltas)
	}
	return err
}

// usageTotals are the stored totals read so far (at most maxTotals; then
// they are read again).
type usageTotals struct {
	load sync.Mutex // held while a total is read from or written to the database
	mu   sync.Mutex
	m    map[string]int64
}

const maxTotals = 100000

func (u *usageTotals) get(key string) (int64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n, ok := u.m[key]
	return n, ok
}

func (u *usageTotals) set(key string, n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil || len(u.m) >= maxTotals {
		u.m = map[string]int64{}
	}
	u.m[key] = n
}

func (u *usageTotals) add(deltas map[string]int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, d := range deltas {
		if n, ok := u.m[k]; ok {
			u.m[k] = n + d
		}
	}
}

// Check reads the first row of every table, on both connections, so a
// damaged page at the root of any table or index shows, and runs the
// bounded quick_check on the first pages.
func (s *Store) Check(ctx context.Context) error {
	for _, db := range []*sql.DB{s.r, s.w} {
		for _, q := range []string{
			`SELECT count(*) FROM (SELECT 1 FROM groups LIMIT 1)`,
			`SELECT count(*) FROM (SELECT 1 FROM records ORDER BY group_id DESC, seq DESC LIMIT 1)`,
			`SELECT count(*) FROM (SELECT 1 FROM records LIMIT 1)`,
			`SELECT count(*) FROM (SELECT 1 FROM members LIMIT 1)`,
			`SELECT count(*) FROM (SELECT 1 FROM key_packages LIMIT 1)`,
			`SELECT count(*) FROM (SELECT 1 FROM sessions LIMIT 1)`,
		} {
			var n int
			if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
				return fmt.Errorf("sqlite: %w", err)
			}
		}
	}
	var res string
	if err := s.r.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&res); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("sqlite: integrity: %s", res)
	}
	return nil
}

var _ store.LastResortClaimer = (*Store)(nil)

func (s *Store) ClaimLastResort(ctx context.Context, claimer, owner string, suite uint16, now time.Time) (store.KeyPackage, error) {
	kp := store.KeyPackage{Owner: owner, Suite: suite, LastResort: true}
	var notAfter int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE key_packages SET used = 1 WHERE owner = ? AND suite = ? AND last_resort = 1 AND not_after >= ?
			RETURNING ref, data, not_after`, owner, suite, ms(now)).Scan(&kp.Ref, &kp.Data, &notAfter)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		// The claim is recorded like any other, so the claimer's Welcome to
		// this KeyPackage is delivered (docs/SECURITY.md).
		_, err = tx.ExecContext(ctx, `INSERT INTO claims (ref, claimer, owner, expires) VALUES (?, ?, ?, ?)
			ON CONFLICT (ref, claimer) DO UPDATE SET expires = excluded.expires`, kp.Ref, claimer, owner, ms(now.Add(store.ClaimTTL)))
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.KeyPackage{}, err
	}
	kp.NotAfter = time.UnixMilli(notAfter)
	s.notify(store.Notification{ClientID: owner})
	return kp, nil
}
