package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
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
//
// It commits without waiting for the WAL flush (synchronous_commit off on
// its connections): a bucket is on every request's path, and a group's
// bucket is one row that every sender locks in turn, so waiting for an
// fsync each would cap a group at one request per flush. After a crash a
// bucket may have its last moments' takes back; the database stays
// consistent (PostgreSQL, "Asynchronous Commit").
func (s *Store) TakeTokens(ctx context.Context, key string, rate, burst, n float64, now time.Time) (bool, error) {
	var left float64 // tokens left, unused but for the RETURNING row
	err := s.lim.QueryRow(ctx, `INSERT INTO rate_limits AS b (key, tokens, updated) VALUES ($1, $2::float8 - $3::float8, $4)
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
		s.lim.Exec(ctx, `DELETE FROM rate_limits WHERE updated < $1`, ms(now)-24*3600*1000)
	}
	return true, nil
}

// Usage is the stored total, read from the database at most every
// usageTTL per key (the quota checks ask for it on every message), plus
// what this node has not written yet. Other nodes' writes show within
// usageTTL (and one read: while one caller reads a key again, the others
// use the total it replaces). This node's own are never missed: a total is
// kept only if it was read while none of this node's flushes ran, and each
// flush then adds what it wrote to the totals kept for its keys
// (writeUsage), so a flush does not send every sender back to the database.
func (s *Store) Usage(ctx context.Context, key string) (int64, error) {
	c := &s.usageCache
	c.mu.Lock()
	u, ok := c.m[key]
	if ok && (time.Since(u.at) < usageTTL || u.reading) {
		c.mu.Unlock()
		return u.n + s.usage.Unwritten(key), nil
	}
	if ok {
		u.reading = true
		c.m[key] = u
	}
	gen := c.gen
	c.mu.Unlock()
	s.usageReads.Add(1)
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT bytes FROM usage WHERE key = $1`, []byte(key)).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && c.gen == gen && gen%2 == 0 {
		// No flush of this node ran during the read.
		if c.m == nil || len(c.m) >= maxCachedUsage {
			c.m = map[string]cachedUsage{} // bounded: start over
		}
		c.m[key] = cachedUsage{n: n, at: time.Now()}
	} else if u, ok := c.m[key]; ok && u.reading {
		// Failed, or the total read may or may not hold what a flush
		// wrote: not kept. The one it was to replace (which has that
		// flush added) is read again by the next caller.
		u.reading = false
		c.m[key] = u
	}
	if err != nil {
		return 0, wrap(err)
	}
	return n + s.usage.Unwritten(key), nil
}

// usageTTL is how long a stored usage total read from the database is
// used again; maxCachedUsage bounds how many are kept.
var usageTTL = 100 * time.Millisecond

const maxCachedUsage = 100_000

// testFlushWritten, when set by a test, runs after a flush's write and
// before the totals kept are brought up to it.
var testFlushWritten func()

// usageCache holds stored usage totals recently read (Usage).
type usageCache struct {
	mu  sync.Mutex
	gen uint64 // odd while a flush of this node writes, even otherwise
	m   map[string]cachedUsage
}

type cachedUsage struct {
	n       int64
	at      time.Time // when n was read
	reading bool      // a caller is reading the key again
}

// AddUsage is written behind (store.UsageBuffer): it returns at once, and
// this node's totals are written together soon after, in one transaction.
// Other nodes see them once written.
func (s *Store) AddUsage(ctx context.Context, key string, delta int64) error {
	s.usage.Add(key, delta)
	return nil
}

func (s *Store) writeUsage(ctx context.Context, deltas map[string]int64) error {
	keys := make([]string, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	slices.Sort(keys) // one lock order for every node
	c := &s.usageCache
	c.mu.Lock()
	c.gen++ // odd: totals read from now on are not kept
	c.mu.Unlock()
	ks, ds := make([][]byte, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		ks[i], ds[i] = []byte(k), deltas[k]
	}
	// One statement, so one round trip and its own transaction: every
	// key's row in the sorted order above (WITH ORDINALITY keeps it), all
	// or nothing.
	_, err := s.pool.Exec(ctx, `INSERT INTO usage (key, bytes)
		SELECT k, d FROM unnest($1::bytea[], $2::bigint[]) WITH ORDINALITY AS u(k, d, i) ORDER BY i
		ON CONFLICT (key) DO UPDATE SET bytes = usage.bytes + excluded.bytes`, ks, ds)
	err = wrap(err)
	if testFlushWritten != nil {
		testFlushWritten()
	}
	c.mu.Lock()
	c.gen++
	for _, k := range keys {
		u, ok := c.m[k]
		switch {
		case !ok:
		case err == nil:
			// Read before this flush began, so without its deltas,
			// which Unwritten stops counting once this returns.
			u.n += deltas[k]
			c.m[k] = u
		default:
			// Perhaps written (an unknown COMMIT outcome): read again.
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
	return err
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
