// Package postgres is mlsd's storage engine for scale-out: any number of
// stateless mlsd nodes share one PostgreSQL database.
//
// Correctness rests on the database, not on any node's memory:
//   - Append locks the group's head row (SELECT ... FOR UPDATE), so records
//     get gapless sequence numbers; a primary key on (group, epoch) in
//     commits makes a second winner for an epoch impossible even if that
//     lock were bypassed. No reliance on SERIALIZABLE.
//   - KeyPackage claims for one owner and suite are serialised by a
//     transaction-scoped advisory lock and delete the row they hand out, so
//     two nodes never hand out the same KeyPackage.
//   - Notifications go through NOTIFY inside the writing transaction, so
//     every node's subscribers wake once the write is committed.
package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlskit/mlskit/ds/store"
)

// Store is a PostgreSQL-backed store.Store.
type Store struct {
	pool    *pgxpool.Pool
	lim     *pgxpool.Pool // token buckets: synchronous_commit off
	schema  string
	channel string

	seed    maphash.Seed
	appends [appendShards]store.Batcher[*appendOp] // group commit
	// The heads each shard's last batches left, by group id: read and
	// written only by the shard's batch leader, one at a time.
	heads [appendShards]map[string]*store.GroupHead
	// Batches written on cached heads, and those whose checks failed
	// (then written by appendBatch).
	guarded, unchecked atomic.Uint64

	usage      store.UsageBuffer // usage totals, written behind
	usageCache usageCache        // and read through a short cache
	usageReads atomic.Uint64     // reads of a total from the database
}

var _ store.Store = (*Store)(nil)

// Options configure Open.
type Options struct {
	// Schema holds mlsd's tables (created if missing); default "mlsd".
	// Tests use one schema per run to stay apart.
	Schema   string
	MaxConns int32
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,50}$`)

// Open connects to dsn and creates the schema and tables if needed.
func Open(ctx context.Context, dsn string, opt Options) (*Store, error) {
	if opt.Schema == "" {
		opt.Schema = "mlsd"
	}
	if !identRE.MatchString(opt.Schema) {
		return nil, fmt.Errorf("postgres: schema name %q: lower-case letters, digits and _ only", opt.Schema)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = opt.Schema
	if opt.MaxConns > 0 {
		cfg.MaxConns = opt.MaxConns
	}
	// Token buckets are not worth an fsync each (see TakeTokens): their
	// connections commit without waiting for the WAL flush.
	limCfg := cfg.Copy()
	limCfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	limCfg.MaxConns = max(2, cfg.MaxConns/4)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	lim, err := pgxpool.NewWithConfig(ctx, limCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, lim: lim, schema: opt.Schema, channel: "mlsd_" + opt.Schema, seed: maphash.MakeSeed()}
	for i := range s.appends {
		s.heads[i] = map[string]*store.GroupHead{}
		s.appends[i].Run = func(ops []*store.Op[*appendOp]) { s.runAppends(s.heads[i], ops) }
	}
	s.usage.Write = s.writeUsage
	s.usage.Gather = store.UsageGather
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		lim.Close()
		return nil, err
	}
	return s, nil
}

const schemaSQL = `
CREATE TABLE IF NOT EXISTS groups (
	group_id bytea PRIMARY KEY,
	epoch bigint NOT NULL,
	head_seq bigint NOT NULL,
	head_hash bytea NOT NULL,
	group_info bytea,
	prio_client text NOT NULL DEFAULT '',
	prio_epoch bigint NOT NULL DEFAULT 0,
	prio_until bigint NOT NULL DEFAULT 0,
	created_at bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
	group_id bytea NOT NULL,
	seq bigint NOT NULL,
	epoch bigint NOT NULL,
	kind smallint NOT NULL,
	wire_format integer NOT NULL,
	sender text NOT NULL,
	recipients bytea,
	body bytea NOT NULL,
	body_hash bytea NOT NULL,
	prev_hash bytea NOT NULL,
	chain_hash bytea NOT NULL,
	created_at bigint NOT NULL,
	PRIMARY KEY (group_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS records_body ON records (group_id, body_hash);
CREATE TABLE IF NOT EXISTS commits (
	group_id bytea NOT NULL,
	epoch bigint NOT NULL,
	seq bigint NOT NULL,
	PRIMARY KEY (group_id, epoch)
);
CREATE TABLE IF NOT EXISTS members (
	group_id bytea NOT NULL,
	client_id text NOT NULL,
	acked_seq bigint NOT NULL,
	PRIMARY KEY (group_id, client_id)
);
CREATE INDEX IF NOT EXISTS members_client ON members (client_id);
CREATE TABLE IF NOT EXISTS key_packages (
	ref bytea PRIMARY KEY,
	owner text NOT NULL,
	suite integer NOT NULL,
	last_resort boolean NOT NULL,
	used boolean NOT NULL DEFAULT false,
	data bytea NOT NULL,
	not_after bigint NOT NULL,
	created_at bigint NOT NULL,
	ord bigint GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS key_packages_owner ON key_packages (owner, suite, last_resort, ord);
CREATE TABLE IF NOT EXISTS challenges (
	challenge bytea PRIMARY KEY,
	expires bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
	token_hash bytea PRIMARY KEY,
	client_id text NOT NULL,
	sig_key bytea NOT NULL,
	expires bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS client_keys (
	client_id text PRIMARY KEY,
	sig_key bytea NOT NULL
);
ALTER TABLE groups ADD COLUMN IF NOT EXISTS public_handshakes boolean NOT NULL DEFAULT false;
ALTER TABLE groups ADD COLUMN IF NOT EXISTS external_joins boolean NOT NULL DEFAULT false;
ALTER TABLE members ADD COLUMN IF NOT EXISTS joined_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN IF NOT EXISTS left_seq bigint NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS claims (
	ref bytea NOT NULL,
	claimer text NOT NULL,
	owner text NOT NULL,
	expires bigint NOT NULL,
	PRIMARY KEY (ref, claimer)
);
`

func (s *Store) migrate(ctx context.Context) error {
	// Two nodes starting at once must not race on CREATE: serialise on an
	// advisory lock.
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mlsd migrate ' || $1))`, s.schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s.schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, schemaSQL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, quotaSQL)
		return err
	})
}

// DropSchema removes the schema and everything in it (for tests).
func (s *Store) DropSchema(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+s.schema+` CASCADE`)
	return err
}

// Close closes the pool.
func (s *Store) Close() error {
	s.usage.Flush()
	s.lim.Close()
	s.pool.Close()
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgres: %w", err)
}

func (s *Store) tx(ctx context.Context, f func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, f)
}

// Notifications travel as "g<hex group id>:<seq>" or "c<hex client id>".
func (s *Store) notify(ctx context.Context, tx pgx.Tx, n store.Notification) error {
	var payload string
	if n.GroupID != nil {
		payload = "g" + hex.EncodeToString(n.GroupID) + ":" + strconv.FormatUint(n.Seq, 10)
	} else {
		payload = "c" + hex.EncodeToString([]byte(n.ClientID))
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, payload)
	return wrap(err)
}

func parseNotification(p string) (store.Notification, bool) {
	switch {
	case strings.HasPrefix(p, "g"):
		h, seq, ok := strings.Cut(p[1:], ":")
		g, err := hex.DecodeString(h)
		n, err2 := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil || err2 != nil {
			return store.Notification{}, false
		}
		return store.Notification{GroupID: g, Seq: n}, true
	case strings.HasPrefix(p, "c"):
		c, err := hex.DecodeString(p[1:])
		if err != nil {
			return store.Notification{}, false
		}
		return store.Notification{ClientID: string(c)}, true
	}
	return store.Notification{}, false
}

// Watch LISTENs on the store's channel on a dedicated connection,
// reconnecting after failures, until ctx ends.
func (s *Store) Watch(ctx context.Context, f func(store.Notification)) error {
	for ctx.Err() == nil {
		err := s.listen(ctx, f)
		if ctx.Err() != nil {
			return nil
		}
		_ = err
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

func (s *Store) listen(ctx context.Context, f func(store.Notification)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// The connection carries a LISTEN: do not hand it back to the pool.
		conn.Hijack().Close(context.Background())
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	// NOTIFYs sent before the LISTEN (at start, or while reconnecting)
	// reached nobody: every subscriber reads again. What commits from now
	// on is notified.
	f(store.Notification{All: true})
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if note, ok := parseNotification(n.Payload); ok {
			f(note)
		}
	}
}

func (s *Store) PutChallenge(ctx context.Context, c []byte, expires time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM challenges WHERE expires < $1`, ms(time.Now())-60_000); err != nil {
			return wrap(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO challenges (challenge, expires) VALUES ($1, $2)`, c, ms(expires))
		return wrap(err)
	})
}

func (s *Store) ConsumeChallenge(ctx context.Context, c []byte, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM challenges WHERE challenge = $1 AND expires >= $2`, c, ms(now))
	if err != nil {
		return wrap(err)
	}
	if tag.RowsAffected() != 1 {
		return store.ErrNotFound
	}
	return nil
}

func (s *Store) BindClientKey(ctx context.Context, clientID string, key []byte) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO client_keys (client_id, sig_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, clientID, key); err != nil {
		return wrap(err)
	}
	var have []byte
	if err := s.pool.QueryRow(ctx, `SELECT sig_key FROM client_keys WHERE client_id = $1`, clientID).Scan(&have); err != nil {
		return wrap(err)
	}
	if string(have) != string(key) {
		return store.ErrKeyBound
	}
	return nil
}

func (s *Store) PutSession(ctx context.Context, tokenHash []byte, sess store.Session) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires < $1`, ms(time.Now())); err != nil {
			return wrap(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO sessions (token_hash, client_id, sig_key, expires) VALUES ($1, $2, $3, $4)`,
			tokenHash, sess.ClientID, sess.SignatureKey, ms(sess.Expires))
		return wrap(err)
	})
}

func (s *Store) Session(ctx context.Context, tokenHash []byte, now time.Time) (store.Session, error) {
	var sess store.Session
	var exp int64
	err := s.pool.QueryRow(ctx, `SELECT client_id, sig_key, expires FROM sessions WHERE token_hash = $1 AND expires >= $2`,
		tokenHash, ms(now)).Scan(&sess.ClientID, &sess.SignatureKey, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return sess, store.ErrNotFound
	}
	if err != nil {
		return sess, wrap(err)
	}
	sess.Expires = time.UnixMilli(exp)
	return sess, nil
}

func lockOwner(ctx context.Context, tx pgx.Tx, owner string, suite uint16) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mlsd kp ' || $1::text || ' ' || $2::text))`, owner, strconv.Itoa(int(suite)))
	return wrap(err)
}

func (s *Store) PutKeyPackage(ctx context.Context, kp store.KeyPackage) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, kp.Owner, kp.Suite); err != nil {
			return err
		}
		if kp.LastResort {
			if _, err := tx.Exec(ctx, `DELETE FROM key_packages WHERE owner = $1 AND suite = $2 AND last_resort AND ref <> $3`, kp.Owner, int(kp.Suite), kp.Ref); err != nil {
				return wrap(err)
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO key_packages (ref, owner, suite, last_resort, data, not_after, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ref) DO NOTHING`,
			kp.Ref, kp.Owner, int(kp.Suite), kp.LastResort, kp.Data, ms(kp.NotAfter), ms(time.Now()))
		if err != nil {
			return wrap(err)
		}
		if tag.RowsAffected() != 1 {
			return store.ErrDuplicate
		}
		return nil
	})
}

func (s *Store) ClaimKeyPackage(ctx context.Context, claimer, owner string, suite uint16, now time.Time) (store.KeyPackage, error) {
	kp := store.KeyPackage{Owner: owner, Suite: suite}
	var notAfter int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// Claims for one owner and suite are serialised across every node.
		if err := lockOwner(ctx, tx, owner, suite); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM key_packages WHERE owner = $1 AND suite = $2 AND NOT last_resort AND not_after < $3`, owner, int(suite), ms(now)); err != nil {
			return wrap(err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM claims WHERE expires < $1`, ms(now)); err != nil {
			return wrap(err)
		}
		claim := func() error {
			if _, err := tx.Exec(ctx, `INSERT INTO claims (ref, claimer, owner, expires) VALUES ($1, $2, $3, $4)
				ON CONFLICT (ref, claimer) DO UPDATE SET expires = excluded.expires`, kp.Ref, claimer, owner, ms(now.Add(store.ClaimTTL))); err != nil {
				return wrap(err)
			}
			return s.notify(ctx, tx, store.Notification{ClientID: owner})
		}
		err := tx.QueryRow(ctx, `DELETE FROM key_packages WHERE ref = (
				SELECT ref FROM key_packages WHERE owner = $1 AND suite = $2 AND NOT last_resort ORDER BY ord LIMIT 1)
			RETURNING ref, data, not_after`, owner, int(suite)).Scan(&kp.Ref, &kp.Data, &notAfter)
		if err == nil {
			return claim()
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return wrap(err)
		}
		err = tx.QueryRow(ctx, `UPDATE key_packages SET used = true WHERE owner = $1 AND suite = $2 AND last_resort AND not_after >= $3
			RETURNING ref, data, not_after`, owner, int(suite), ms(now)).Scan(&kp.Ref, &kp.Data, &notAfter)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return wrap(err)
		}
		kp.LastResort = true
		return claim()
	})
	if err != nil {
		return store.KeyPackage{}, err
	}
	kp.NotAfter = time.UnixMilli(notAfter)
	return kp, nil
}

func (s *Store) Claims(ctx context.Context, refs [][]byte, now time.Time) ([]store.Claim, error) {
	rows, err := s.pool.Query(ctx, `SELECT ref, claimer, owner FROM claims WHERE ref = ANY($1) AND expires >= $2 ORDER BY ref, claimer`, refs, ms(now))
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []store.Claim
	for rows.Next() {
		var c store.Claim
		if err := rows.Scan(&c.Ref, &c.Claimer, &c.Owner); err != nil {
			return nil, wrap(err)
		}
		out = append(out, c)
	}
	return out, wrap(rows.Err())
}

func (s *Store) KeyPackageStock(ctx context.Context, owner string, now time.Time) ([]store.Stock, error) {
	rows, err := s.pool.Query(ctx, `SELECT suite,
			count(*) FILTER (WHERE NOT last_resort AND not_after >= $1),
			bool_or(last_resort), coalesce(bool_or(last_resort AND used), false)
		FROM key_packages WHERE owner = $2 GROUP BY suite ORDER BY suite`, ms(now), owner)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []store.Stock
	for rows.Next() {
		var st store.Stock
		var suite int32
		var count int64
		if err := rows.Scan(&suite, &count, &st.HasLastResort, &st.LastResortUsed); err != nil {
			return nil, wrap(err)
		}
		st.Suite, st.Count = uint16(suite), int(count)
		out = append(out, st)
	}
	return out, wrap(rows.Err())
}

func (s *Store) CreateGroup(ctx context.Context, groupID []byte, creator string, groupInfo []byte, policy store.Policy, now time.Time) (store.Group, error) {
	g := store.Group{ID: groupID, HeadHash: store.GenesisHash(groupID), GroupInfo: groupInfo, Policy: policy}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO groups (group_id, epoch, head_seq, head_hash, group_info, created_at, public_handshakes, external_joins)
			VALUES ($1, 0, 0, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, groupID, g.HeadHash, groupInfo, ms(now), policy.PublicHandshakes, policy.ExternalJoins)
		if err != nil {
			return wrap(err)
		}
		if tag.RowsAffected() != 1 {
			return store.ErrExists
		}
		if _, err := tx.Exec(ctx, `INSERT INTO members (group_id, client_id, acked_seq) VALUES ($1, $2, 0)`, groupID, creator); err != nil {
			return wrap(err)
		}
		return s.notify(ctx, tx, store.Notification{ClientID: creator})
	})
	if err != nil {
		return store.Group{}, err
	}
	return g, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// queueHeadUpdate queues the UPDATE of a group's head after an append,
// which replaces the published GroupInfo only when gi is not nil. Left out
// of the SET, the stored (TOASTed) GroupInfo is neither read nor written.
func queueHeadUpdate(b *pgx.Batch, groupID []byte, epoch, seq uint64, hash, gi []byte) {
	if gi == nil {
		b.Queue(`UPDATE groups SET epoch = $1, head_seq = $2, head_hash = $3 WHERE group_id = $4`,
			int64(epoch), int64(seq), hash, groupID)
		return
	}
	b.Queue(`UPDATE groups SET epoch = $1, head_seq = $2, head_hash = $3, group_info = $4 WHERE group_id = $5`,
		int64(epoch), int64(seq), hash, gi, groupID)
}

// loadHead reads a group's head, with its GroupInfo only if withGroupInfo
// (else nil), and locks the row if forUpdate. An append neither reads the
// GroupInfo (it holds the ratchet tree: megabytes in a large group,
// TOASTed) nor writes it unless its commit carries a new one, so a message
// costs the same in any group.
func loadHead(ctx context.Context, q querier, groupID []byte, withGroupInfo, forUpdate bool) (*store.GroupHead, error) {
	h := &store.GroupHead{}
	var until int64
	var epoch, head, prioEpoch int64
	gi := "NULL::bytea"
	if withGroupInfo {
		gi = "group_info"
	}
	sql := `SELECT group_id, epoch, head_seq, head_hash, ` + gi + `, prio_client, prio_epoch, prio_until, public_handshakes, external_joins
		FROM groups WHERE group_id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	err := q.QueryRow(ctx, sql, groupID).Scan(&h.ID, &epoch, &head, &h.HeadHash, &h.GroupInfo, &h.PriorityClient, &prioEpoch, &until,
		&h.Policy.PublicHandshakes, &h.Policy.ExternalJoins)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, wrap(err)
	}
	h.Epoch, h.HeadSeq, h.PriorityEpoch = uint64(epoch), uint64(head), uint64(prioEpoch)
	h.PriorityUntil = time.UnixMilli(until)
	return h, nil
}

func (s *Store) Group(ctx context.Context, groupID []byte) (store.Group, error) {
	h, err := loadHead(ctx, s.pool, groupID, true, false)
	if err != nil {
		return store.Group{}, err
	}
	return h.Group, nil
}

func (s *Store) Head(ctx context.Context, groupID []byte) (store.Group, error) {
	h, err := loadHead(ctx, s.pool, groupID, false, false)
	if err != nil {
		return store.Group{}, err
	}
	return h.Group, nil
}

const recordCols = `group_id, seq, epoch, kind, wire_format, sender, recipients, body, body_hash, prev_hash, chain_hash, created_at`

func scanRecord(row pgx.Row) (store.Record, error) {
	var r store.Record
	var recips []byte
	var seq, epoch, t int64
	var kind int16
	var wf int32
	if err := row.Scan(&r.GroupID, &seq, &epoch, &kind, &wf, &r.Sender, &recips, &r.Body, &r.BodyHash, &r.PrevHash, &r.ChainHash, &t); err != nil {
		return r, err
	}
	r.Seq, r.Epoch, r.Kind, r.WireFormat = uint64(seq), uint64(epoch), uint8(kind), uint16(wf)
	var err error
	if r.Recipients, err = store.DecodeRecipients(recips); err != nil {
		return r, err
	}
	r.Time = time.UnixMilli(t)
	return r, nil
}

func commitRecord(ctx context.Context, q querier, groupID []byte, epoch uint64) (store.Record, error) {
	r, err := scanRecord(q.QueryRow(ctx, `SELECT `+recordCols+` FROM records WHERE group_id = $1 AND seq =
		(SELECT seq FROM commits WHERE group_id = $1 AND epoch = $2)`, groupID, int64(epoch)))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, store.ErrNotFound
	}
	return r, wrap(err)
}

func (s *Store) CommitRecord(ctx context.Context, groupID []byte, epoch uint64) (store.Record, error) {
	return commitRecord(ctx, s.pool, groupID, epoch)
}

// appendOp is one Append waiting for group commit.
type appendOp struct {
	a    *store.Append
	recs []store.Record
}

// appendShards spreads groups over this many batchers: appends to one group
// always meet in the same one (they serialise on the group's row lock
// anyway), while other groups' batches commit in parallel.
const appendShards = 8

// Append implements store.Store with group commit: concurrent appends (to
// one group, or to groups of one shard) share one transaction and one
// fsync. The rules of each are checked in order inside that transaction, as
// if each ran alone: a later commit in a batch sees the epoch an earlier one
// advanced and loses with the same StaleEpochError. Append returns only
// after the transaction holding its records committed.
func (s *Store) Append(ctx context.Context, a store.Append) ([]store.Record, error) {
	if err := store.ValidateAppend(&a); err != nil {
		return nil, err
	}
	op := &appendOp{a: &a}
	b := &s.appends[maphash.Bytes(s.seed, a.GroupID)%appendShards]
	if err := b.Do(ctx, op); err != nil {
		return nil, err
	}
	return op.recs, nil
}

// BatchStats implements store.BatchStats (appends only: the other writes
// are single statements or transactions of their own).
func (s *Store) BatchStats() (writes, transactions uint64) {
	for i := range s.appends {
		w, t := s.appends[i].Stats()
		writes += w
		transactions += t
	}
	return writes, transactions
}

// headCacheMax bounds the heads a shard keeps: past it, the shard starts
// again from none (each group's next batch reads its head).
const headCacheMax = 1024

func (s *Store) runAppends(cache map[string]*store.GroupHead, ops []*store.Op[*appendOp]) {
	ctx := context.WithoutCancel(ops[0].Ctx)
	// A batch goes in one round trip on the heads this shard's last
	// batches left (appendGuarded), or else in two (appendBatch): a lone
	// append too, where appendTx takes six (BEGIN, head, membership,
	// duplicates, writes, COMMIT), each one a wake-up of a backend on a
	// loaded machine.
	heads, err := s.appendGuarded(ctx, cache, ops)
	if err == nil {
		s.guarded.Add(1)
	}
	if errors.Is(err, errUnchecked) {
		s.unchecked.Add(1)
	}
	if errors.Is(err, errUnchecked) || errors.Is(err, errNotCached) {
		for _, op := range ops {
			op.Err, op.Fn.recs = nil, nil
		}
		heads, err = s.appendBatch(ctx, ops)
	}
	for _, op := range ops {
		delete(cache, string(op.Fn.a.GroupID))
	}
	if err == nil {
		if len(cache)+len(heads) > headCacheMax {
			clear(cache)
		}
		for g, h := range heads {
			cache[g] = h
		}
		return
	}
	if errors.Is(err, errCommit) {
		for _, op := range ops {
			if op.Err == nil {
				op.Err = err
			}
		}
		return
	}
	// Rolled back before COMMIT (a deadlock with another node, a failed
	// statement): each append goes again alone, so no append fails for
	// another's sake, and the database's own refusal (commits_pkey) is
	// mapped there.
	for _, op := range ops {
		op.Err = s.appendAlone(ctx, op.Fn)
	}
}

// errCommit says COMMIT failed: the outcome is unknown, so nothing of the
// batch is acknowledged.
var errCommit = errors.New("postgres: commit failed")

func (s *Store) appendAlone(ctx context.Context, op *appendOp) error {
	var refused error
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		op.recs, refused, err = s.appendTx(ctx, tx, op.a)
		if err == nil && refused != nil {
			err = refused
		}
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "commits_pkey" {
		// Cannot happen under the row lock; if it does, the database
		// still refuses a second winner.
		return &store.StaleEpochError{Epoch: op.a.Epoch, CurrentEpoch: op.a.Epoch + 1}
	}
	if refused != nil {
		return refused
	}
	return wrap(err)
}

// appendTx checks and writes one Append in tx. A refusal (the rules of
// store.Store.Append) comes back as refused, before anything is written;
// err is a database failure, after which tx is unusable.
func (s *Store) appendTx(ctx context.Context, tx pgx.Tx, a *store.Append) (recs []store.Record, refused, err error) {
	// The row lock on the head serialises appends to this group
	// across every node.
	h, err := loadHead(ctx, tx, a.GroupID, false, true)
	if errors.Is(err, store.ErrNotFound) {
		return nil, err, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if !a.ExternalJoin {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE group_id = $1 AND client_id = $2 AND left_seq = 0)`, a.GroupID, a.Sender).Scan(&ok); err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, store.ErrNotMember, nil
		}
	}
	var lookupErr error
	if err := store.CheckEpoch(h, a, func(e uint64) (store.Record, error) {
		r, err := commitRecord(ctx, tx, a.GroupID, e)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			lookupErr = err
		}
		return r, err
	}); err != nil {
		if lookupErr != nil {
			return nil, nil, lookupErr
		}
		return nil, err, nil
	}
	if err := store.CheckPriority(h, a); err != nil {
		return nil, err, nil
	}
	hashes := make([][]byte, len(a.Entries))
	for i, e := range a.Entries {
		hashes[i] = store.BodyHash(e.Body)
	}
	var dup int64
	err = tx.QueryRow(ctx, `SELECT seq FROM records WHERE group_id = $1 AND body_hash = ANY($2) LIMIT 1`, a.GroupID, hashes).Scan(&dup)
	if err == nil {
		return nil, &store.DuplicateError{Seq: uint64(dup)}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, err
	}
	recs = store.BuildRecords(h, a)
	batch := &pgx.Batch{}
	for i := range recs {
		r := &recs[i]
		batch.Queue(`INSERT INTO records (`+recordCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			r.GroupID, int64(r.Seq), int64(r.Epoch), int16(r.Kind), int32(r.WireFormat), r.Sender, store.EncodeRecipients(r.Recipients),
			r.Body, r.BodyHash, r.PrevHash, r.ChainHash, ms(r.Time))
	}
	last := recs[len(recs)-1]
	epoch := h.Epoch
	var notes []store.Notification
	if a.Commit {
		epoch++
		batch.Queue(`INSERT INTO commits (group_id, epoch, seq) VALUES ($1, $2, $3)`, a.GroupID, int64(a.Epoch), int64(recs[0].Seq))
		add := a.AddMembers
		if a.ExternalJoin {
			add = append(add[:len(add):len(add)], a.Sender)
		}
		for _, c := range add {
			// Added members start after the commit; a removed member
			// added again starts over.
			batch.Queue(`INSERT INTO members (group_id, client_id, acked_seq, joined_seq, left_seq) VALUES ($1, $2, $3, $3, 0)
				ON CONFLICT (group_id, client_id) DO UPDATE SET acked_seq = excluded.acked_seq, joined_seq = excluded.joined_seq, left_seq = 0
				WHERE members.left_seq <> 0`, a.GroupID, c, int64(recs[0].Seq))
			notes = append(notes, store.Notification{ClientID: c})
		}
		for _, c := range a.RemoveMembers {
			// The removed member still receives this commit.
			batch.Queue(`UPDATE members SET left_seq = $3 WHERE group_id = $1 AND client_id = $2 AND left_seq = 0`, a.GroupID, c, int64(recs[0].Seq))
			notes = append(notes, store.Notification{ClientID: c})
		}
		if len(a.UseClaims) > 0 {
			batch.Queue(`DELETE FROM claims WHERE ref = ANY($1) AND claimer = $2`, a.UseClaims, a.Sender)
		}
	}
	queueHeadUpdate(batch, a.GroupID, epoch, last.Seq, last.ChainHash, a.GroupInfo)
	// Members' changes first: a removed member's stream learns it
	// before it reads past its removal.
	for _, n := range notes {
		batch.Queue(`SELECT pg_notify($1, $2)`, s.channel, "c"+hex.EncodeToString([]byte(n.ClientID)))
	}
	batch.Queue(`SELECT pg_notify($1, $2)`, s.channel, "g"+hex.EncodeToString(a.GroupID)+":"+strconv.FormatUint(last.Seq, 10))
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, nil, err
	}
	return recs, nil, nil
}

func (s *Store) Records(ctx context.Context, groupID []byte, after uint64, limit int) ([]store.Record, error) {
	if after >= store.MaxSeq {
		return nil, nil // int64(after) would wrap around to the whole log
	}
	rows, err := s.pool.Query(ctx, `SELECT `+recordCols+` FROM records WHERE group_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, groupID, int64(after), limit)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, r)
	}
	return out, wrap(rows.Err())
}

func (s *Store) Membership(ctx context.Context, groupID []byte, clientID string) (store.Membership, error) {
	m := store.Membership{GroupID: groupID, ClientID: clientID}
	var acked, joined, left int64
	err := s.pool.QueryRow(ctx, `SELECT acked_seq, joined_seq, left_seq FROM members WHERE group_id = $1 AND client_id = $2`,
		groupID, clientID).Scan(&acked, &joined, &left)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, store.ErrNotMember
	}
	m.AckedSeq, m.JoinedSeq, m.LeftSeq = uint64(acked), uint64(joined), uint64(left)
	return m, wrap(err)
}

func (s *Store) Memberships(ctx context.Context, clientID string) ([]store.Membership, error) {
	rows, err := s.pool.Query(ctx, `SELECT group_id, acked_seq, joined_seq, left_seq FROM members WHERE client_id = $1 ORDER BY group_id`, clientID)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []store.Membership
	for rows.Next() {
		m := store.Membership{ClientID: clientID}
		var acked, joined, left int64
		if err := rows.Scan(&m.GroupID, &acked, &joined, &left); err != nil {
			return nil, wrap(err)
		}
		m.AckedSeq, m.JoinedSeq, m.LeftSeq = uint64(acked), uint64(joined), uint64(left)
		out = append(out, m)
	}
	return out, wrap(rows.Err())
}

func (s *Store) Members(ctx context.Context, groupID []byte) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT client_id FROM members WHERE group_id = $1 AND left_seq = 0 ORDER BY client_id`, groupID)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, wrap(err)
		}
		out = append(out, c)
	}
	return out, wrap(rows.Err())
}

func (s *Store) Ack(ctx context.Context, groupID []byte, clientID string, seq uint64) error {
	if seq > 1<<62 {
		seq = 1 << 62
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE members SET acked_seq = greatest(acked_seq, least($1, (SELECT head_seq FROM groups WHERE group_id = $2),
				CASE left_seq WHEN 0 THEN $1 ELSE left_seq END))
			WHERE group_id = $2 AND client_id = $3`, int64(seq), groupID, clientID)
		if err != nil {
			return wrap(err)
		}
		if tag.RowsAffected() != 1 {
			return store.ErrNotMember
		}
		// A removed member that has its removal is gone for good.
		_, err = tx.Exec(ctx, `DELETE FROM members WHERE group_id = $1 AND client_id = $2 AND left_seq <> 0 AND acked_seq >= left_seq`, groupID, clientID)
		return wrap(err)
	})
}

func (s *Store) SetPriority(ctx context.Context, groupID []byte, clientID string, epoch uint64, until time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE groups SET prio_client = $1, prio_epoch = $2, prio_until = $3 WHERE group_id = $4 AND epoch <= $2`,
		clientID, int64(epoch), ms(until), groupID)
	return wrap(err)
}
