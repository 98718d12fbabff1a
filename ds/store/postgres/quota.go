package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mlskit/mlskit/ds/store"
)

// Token buckets and usage totals shared by every node on the database.
// Keys are bytes: they hold group ids, which text columns cannot.
const quotaSQL = `
CREATE TABLE IF NOT EXISTS rate_limits (
	key bytea PRIMARY KEY,
	tokens double precision NOT NULL,
	updated bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
	key bytea PRIMARY KEY,
	bytes bigint NOT NULL
);
`

var (
	_ store.SharedLimiter = (*Store)(nil)
	_ store.UsageCounter  = (*Store)(nil)
	_ store.HealthChecker = (*Store)(nil)
)

// TakeTokens is one statement: the row lock the upsert takes serialises
// nodes drawing on one bucket, and a bucket without the tokens is left as
// it was (the WHERE refuses the update, and nothing is returned).
func (s *Store) TakeTokens(ctx context.Context, key string, rate, burst, n float64, now time.Time) (bool, error) {
	var left float64 // tokens left, unused but for the RETURNING row
	err := s.pool.QueryRow(ctx, `INSERT INTO rate_limits AS b (key, tokens, updated) VALUES ($1, $2::float8 - $3::float8, $4)
		ON CONFLICT (key) DO UPDATE
			SET tokens = least($2::float8, b.tokens + greatest(0, $4 - b.updated) / 1000.0 * $5::float8) - $3::float8,
			    updated = greatest(b.updated, $4)
			WHERE least($2::float8, b.tokens + greatest(0, $4 - b.updated) / 1000.0 * $5::float8) >= $3::float8
		RETURNING tokens`, []byte(key), burst, n, ms(now), rate).Scan(&left)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap(err)
	}
	// Full buckets are worth nothing: sweep old ones now and then.
	if rand.IntN(1000) == 0 {
		s.pool.Exec(ctx, `DELETE FROM rate_limits WHERE updated < $1`, ms(now)-24*3600*1000)
	}
	return true, nil
}

func (s *Store) Usage(ctx context.Context, key string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT bytes FROM usage WHERE key = $1`, []byte(key)).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, wrap(err)
}

func (s *Store) AddUsage(ctx context.Context, key string, delta int64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO usage (key, bytes) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET bytes = usage.bytes + excluded.bytes`, []byte(key), delta)
	return wrap(err)
}

// Check asks the database to answer and to read every table.
func (s *Store) Check(ctx context.Context) error {
	for _, q := range []string{
		`SELECT count(*) FROM (SELECT 1 FROM groups LIMIT 1) x`,
		`SELECT count(*) FROM (SELECT 1 FROM records LIMIT 1) x`,
		`SELECT count(*) FROM (SELECT 1 FROM members LIMIT 1) x`,
		`SELECT count(*) FROM (SELECT 1 FROM key_packages LIMIT 1) x`,
	} {
		var n int64
		if err := s.pool.QueryRow(ctx, q).Scan(&n); err != nil {
			return wrap(err)
		}
	}
	return nil
}

var _ store.LastResortClaimer = (*Store)(nil)

func (s *Store) ClaimLastResort(ctx context.Context, claimer, owner string, suite uint16, now time.Time) (store.KeyPackage, error) {
	kp := store.KeyPackage{Owner: owner, Suite: suite, LastResort: true}
	var notAfter int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, owner, suite); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `UPDATE key_packages SET used = true WHERE owner = $1 AND suite = $2 AND last_resort AND not_after >= $3
			RETURNING ref, data, not_after`, owner, int(suite), ms(now)).Scan(&kp.Ref, &kp.Data, &notAfter)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return wrap(err)
		}
		// The claim is recorded like any other, so the claimer's Welcome to
		// this KeyPackage is delivered (docs/SECURITY.md).
		if _, err := tx.Exec(ctx, `INSERT INTO claims (ref, claimer, owner, expires) VALUES ($1, $2, $3, $4)
			ON CONFLICT (ref, claimer) DO UPDATE SET expires = excluded.expires`, kp.Ref, claimer, owner, ms(now.Add(store.ClaimTTL))); err != nil {
			return wrap(err)
		}
		return s.notify(ctx, tx, store.Notification{ClientID: owner})
	})
	if err != nil {
		return store.KeyPackage{}, err
	}
	kp.NotAfter = time.UnixMilli(notAfter)
	return kp, nil
}
