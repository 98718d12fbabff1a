package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mlskit/mlskit/ds/store"
)

// appendBatch runs ops in one transaction in two round trips, however many
// ops there are: one pipeline that opens the transaction and reads (lock
// the groups' heads, the senders' memberships, the bodies already in the
// logs), the rules of Append applied to each op in order in memory, one
// pipeline that writes and commits. A round trip, not the work, is what an
// append costs on a loaded machine (each one waits for the backend to be
// scheduled), and the batch's round trips are what every sender of a group
// waits for in turn.
//
// BEGIN and COMMIT travel inside the pipelines. A statement that fails
// makes the server skip the rest of its pipeline, COMMIT included, so
// nothing of the batch is written and appendBatch returns the error (the
// ops then go again alone); only an error of COMMIT itself leaves the
// outcome unknown (errCommit). A connection given back inside a
// transaction is closed by the pool, never reused half-done.
//
// The reads are consistent with the writes because every writer of a
// group's records and memberships holds the lock on its head taken first
// (READ COMMITTED: each later statement of the pipeline sees what was
// committed before the lock was granted). A refused op writes nothing; a
// database error ends the whole batch (runAppends then runs each op alone).
// It returns the heads the batch left, which appendGuarded writes the
// group's next batch on.
func (s *Store) appendBatch(ctx context.Context, ops []*store.Op[*appendOp]) (map[string]*store.GroupHead, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	defer conn.Release()
	open := false // a transaction is open on conn
	defer func() {
		if open {
			conn.Exec(ctx, "ROLLBACK")
		}
	}()

	var ids, mg, bg [][]byte
	var mc []string
	seen := map[string]bool{}
	for _, op := range ops {
		a := op.Fn.a
		if !seen[string(a.GroupID)] {
			seen[string(a.GroupID)] = true
			ids = append(ids, a.GroupID)
		}
		if !a.ExternalJoin {
			mg, mc = append(mg, a.GroupID), append(mc, a.Sender)
		}
	}
	var bh [][]byte
	for _, op := range ops {
		for _, e := range op.Fn.a.Entries {
			bg, bh = append(bg, op.Fn.a.GroupID), append(bh, store.BodyHash(e.Body))
		}
	}
	// Heads locked in one order (byte order of the ids: LockRows sits above
	// the sort), so two nodes' batches over the same groups cannot deadlock.
	slices.SortFunc(ids, bytes.Compare)
	rb := &pgx.Batch{}
	rb.Queue(`BEGIN`)
	// Without the GroupInfo: see loadHead.
	rb.Queue(`SELECT group_id, epoch, head_seq, head_hash, prio_client, prio_epoch, prio_until, public_handshakes, external_joins
		FROM groups WHERE group_id = ANY($1) ORDER BY group_id FOR UPDATE`, ids)
	rb.Queue(`SELECT m.group_id, m.client_id FROM members m JOIN unnest($1::bytea[], $2::text[]) AS q(g, c)
		ON m.group_id = q.g AND m.client_id = q.c WHERE m.left_seq = 0`, mg, mc)
	rb.Queue(`SELECT r.group_id, r.body_hash, r.seq FROM records r JOIN unnest($1::bytea[], $2::bytea[]) AS q(g, h)
		ON r.group_id = q.g AND r.body_hash = q.h`, bg, bh)
	st := &batchState{
		heads:  map[string]*store.GroupHead{},
		active: map[string]bool{},   // group id + "\x00" + client
		bodies: map[string]uint64{}, // group id + "\x00" + body hash -> seq
	}
	br := conn.SendBatch(ctx, rb)
	open = true
	err = func() error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, _ := br.Query()
		for rows.Next() {
			h := &store.GroupHead{}
			var epoch, head, prioEpoch, until int64
			if err := rows.Scan(&h.ID, &epoch, &head, &h.HeadHash, &h.PriorityClient, &prioEpoch, &until,
				&h.Policy.PublicHandshakes, &h.Policy.ExternalJoins); err != nil {
				rows.Close()
				return err
			}
			h.Epoch, h.HeadSeq, h.PriorityEpoch = uint64(epoch), uint64(head), uint64(prioEpoch)
			h.PriorityUntil = time.UnixMilli(until)
			st.heads[string(h.ID)] = h
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, _ = br.Query()
		for rows.Next() {
			var g []byte
			var c string
			if err := rows.Scan(&g, &c); err != nil {
				rows.Close()
				return err
			}
			st.active[string(g)+"\x00"+c] = true
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, _ = br.Query()
		for rows.Next() {
			var g, h []byte
			var seq int64
			if err := rows.Scan(&g, &h, &seq); err != nil {
				rows.Close()
				return err
			}
			st.bodies[string(g)+"\x00"+string(h)] = uint64(seq)
		}
		return rows.Err()
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, wrap(err)
	}
	heads, err := s.writeBatch(ctx, conn, ops, st, nil)
	if err == nil && heads != nil {
		open = false // committed
	}
	return heads, err
}

// batchState is what the rules of a batch read: each group's head, which
// of the batch's senders are active members, and which of its bodies are
// already in the logs (keys: group id + "\x00" + client or body hash).
type batchState struct {
	heads  map[string]*store.GroupHead
	active map[string]bool
	bodies map[string]uint64
}

// appendGuarded runs ops in one round trip, on the heads this node's last
// batches left for their groups (cached), where appendBatch takes two. It
// reads nothing first: its pipeline opens the transaction and checks in
// the database what appendBatch would have read, and fails whole unless
// every check holds:
//   - each group's head (its epoch, head, hash, priority and policy) is
//     the cached one, and its row is locked while that is checked;
//   - every sender is an active member (one statement for the batch);
//   - no body is in its log already (the unique index records_body, at
//     the INSERT).
//
// A check that fails raises an error (a division by zero, or the unique
// violation), so the server skips the rest of the pipeline, COMMIT
// included: nothing is written and appendGuarded returns errUnchecked, and
// the batch goes again through appendBatch, which reads what changed and
// refuses only the ops the rules refuse. An op that the rules refuse on a
// cached head sends the batch there too, before anything is sent. So the
// cache decides only which way a batch is written, never whether an op is
// accepted. A sender whose ops fail a check (a replay, a removed member's
// message) costs its batch one more round trip, within its rate limits.
func (s *Store) appendGuarded(ctx context.Context, cached map[string]*store.GroupHead, ops []*store.Op[*appendOp]) (map[string]*store.GroupHead, error) {
	st := &batchState{heads: map[string]*store.GroupHead{}, active: map[string]bool{}, bodies: map[string]uint64{}}
	var ids, mg [][]byte // the groups; the senders' groups and ids (mc), each pair once
	var mc []string
	for _, op := range ops {
		a := op.Fn.a
		g := string(a.GroupID)
		if st.heads[g] == nil {
			h := cached[g]
			if h == nil {
				return nil, errNotCached
			}
			c := *h
			st.heads[g] = &c
			ids = append(ids, a.GroupID)
		}
		// The key is unambiguous: a client id holds no zero byte. The
		// senders go to the statement from the ops themselves, not split
		// back out of the keys: a group id may hold one.
		if k := g + "\x00" + a.Sender; !a.ExternalJoin && !st.active[k] {
			st.active[k] = true
			mg, mc = append(mg, a.GroupID), append(mc, a.Sender)
		}
	}
	// The checks, on the cached heads (before the rules move them): the
	// heads locked in byte order of their ids, as appendBatch locks them,
	// then the senders' memberships.
	guard := &pgx.Batch{}
	guard.Queue(`BEGIN`)
	slices.SortFunc(ids, bytes.Compare)
	for _, id := range ids {
		h := st.heads[string(id)]
		guard.Queue(`SELECT 1 / count(*)::int FROM (SELECT 1 FROM groups WHERE group_id = $1 AND epoch = $2 AND head_seq = $3
			AND head_hash = $4 AND prio_client = $5 AND prio_epoch = $6 AND prio_until = $7 AND public_handshakes = $8
			AND external_joins = $9 FOR UPDATE) AS g`,
			id, int64(h.Epoch), int64(h.HeadSeq), h.HeadHash, h.PriorityClient, int64(h.PriorityEpoch), ms(h.PriorityUntil),
			h.Policy.PublicHandshakes, h.Policy.ExternalJoins)
	}
	if len(mg) > 0 {
		guard.Queue(`SELECT 1 / (count(*) = $3)::int FROM members m JOIN unnest($1::bytea[], $2::text[]) AS q(g, c)
			ON m.group_id = q.g AND m.client_id = q.c WHERE m.left_seq = 0`, mg, mc, int64(len(mg)))
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	defer conn.Release()
	heads, err := s.writeBatch(ctx, conn, ops, st, guard)
	if err == nil || errors.Is(err, errUnchecked) {
		return heads, err // committed, or nothing sent
	}
	// The pipeline was sent and did not commit (or COMMIT's outcome is
	// unknown): end whatever transaction is left on conn.
	conn.Exec(ctx, "ROLLBACK")
	var pe *pgconn.PgError
	if !errors.Is(err, errCommit) && errors.As(err, &pe) &&
		(pe.Code == "22012" || pe.Code == "23505" && pe.ConstraintName == "records_body") {
		return nil, errUnchecked // a check failed
	}
	return nil, err
}

// errUnchecked says appendGuarded wrote nothing because a check failed or
// an op was refused, and errNotCached that a group of the batch has no
// cached head: either way the batch goes through appendBatch.
var (
	errUnchecked = errors.New("postgres: batch not written on cached heads")
	errNotCached = errors.New("postgres: no cached head")
)

// writeBatch applies the rules of Append to ops, in order, on st, and
// sends their writes and COMMIT in one pipeline on conn. With guard (from
// appendGuarded), the pipeline starts with it: it opens the transaction
// and checks the heads st was given, and an op the rules refuse makes the
// batch errUnchecked. Without, conn's transaction is open, its heads
// locked. It returns the heads it left (nil GroupInfo) for the cache.
func (s *Store) writeBatch(ctx context.Context, conn *pgxpool.Conn, ops []*store.Op[*appendOp], st *batchState, guard *pgx.Batch) (map[string]*store.GroupHead, error) {
	heads, active, bodies := st.heads, st.active, st.bodies
	wb := &pgx.Batch{}
	if guard != nil {
		wb = guard
	}
	// The rules, op by op, in order, on the state the earlier ops left.
	winners := map[string]store.Record{} // group id + "\x00" + epoch -> commit won in this batch
	var notes []string                   // client notifications, then one per group
	var touched [][]byte                 // groups written, in order of their first write
	wrote := map[string]bool{}
	for _, op := range ops {
		a := op.Fn.a
		g := string(a.GroupID)
		h, ok := heads[g]
		if !ok {
			op.Err = store.ErrNotFound
			continue
		}
		if !a.ExternalJoin && !active[g+"\x00"+a.Sender] {
			op.Err = store.ErrNotMember
			continue
		}
		var lookupErr error
		if err := store.CheckEpoch(h, a, func(e uint64) (store.Record, error) {
			if r, ok := winners[g+"\x00"+strconv.FormatUint(e, 10)]; ok {
				return r, nil
			}
			r, err := commitRecord(ctx, conn, a.GroupID, e)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				lookupErr = err
			}
			return r, err
		}); err != nil {
			if lookupErr != nil {
				return nil, lookupErr
			}
			op.Err = err
			continue
		}
		if err := store.CheckPriority(h, a); err != nil {
			op.Err = err
			continue
		}
		var dup error
		for _, e := range a.Entries {
			if seq, ok := bodies[g+"\x00"+string(store.BodyHash(e.Body))]; ok {
				dup = &store.DuplicateError{Seq: seq}
				break
			}
		}
		if dup != nil {
			op.Err = dup
			continue
		}
		recs := store.BuildRecords(h, a)
		op.Fn.recs = recs
		for i := range recs {
			r := &recs[i]
			bodies[g+"\x00"+string(r.BodyHash)] = r.Seq
			wb.Queue(`INSERT INTO records (`+recordCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				r.GroupID, int64(r.Seq), int64(r.Epoch), int16(r.Kind), int32(r.WireFormat), r.Sender, store.EncodeRecipients(r.Recipients),
				r.Body, r.BodyHash, r.PrevHash, r.ChainHash, ms(r.Time))
		}
		if !wrote[g] {
			wrote[g] = true
			touched = append(touched, a.GroupID)
		}
		last := recs[len(recs)-1]
		h.HeadSeq, h.HeadHash = last.Seq, last.ChainHash
		if a.GroupInfo != nil {
			h.GroupInfo = a.GroupInfo
		}
		if !a.Commit {
			continue
		}
		h.Epoch++
		winners[g+"\x00"+strconv.FormatUint(a.Epoch, 10)] = recs[0]
		wb.Queue(`INSERT INTO commits (group_id, epoch, seq) VALUES ($1, $2, $3)`, a.GroupID, int64(a.Epoch), int64(recs[0].Seq))
		add := a.AddMembers
		if a.ExternalJoin {
			add = append(add[:len(add):len(add)], a.Sender)
		}
		for _, c := range add {
			// As in appendTx: added members start after the commit; a
			// removed member added again starts over.
			wb.Queue(`INSERT INTO members (group_id, client_id, acked_seq, joined_seq, left_seq) VALUES ($1, $2, $3, $3, 0)
				ON CONFLICT (group_id, client_id) DO UPDATE SET acked_seq = excluded.acked_seq, joined_seq = excluded.joined_seq, left_seq = 0
				WHERE members.left_seq <> 0`, a.GroupID, c, int64(recs[0].Seq))
			active[g+"\x00"+c] = true
			notes = append(notes, "c"+hex.EncodeToString([]byte(c)))
		}
		for _, c := range a.RemoveMembers {
			wb.Queue(`UPDATE members SET left_seq = $3 WHERE group_id = $1 AND client_id = $2 AND left_seq = 0`, a.GroupID, c, int64(recs[0].Seq))
			delete(active, g+"\x00"+c)
			notes = append(notes, "c"+hex.EncodeToString([]byte(c)))
		}
		if len(a.UseClaims) > 0 {
			wb.Queue(`DELETE FROM claims WHERE ref = ANY($1) AND claimer = $2`, a.UseClaims, a.Sender)
		}
	}
	if guard != nil {
		for _, op := range ops {
			if op.Err != nil {
				// Refused on a cached head, which the database has
				// not confirmed: let appendBatch judge it on what it
				// reads.
				return nil, errUnchecked
			}
		}
	}
	if len(touched) == 0 {
		return nil, nil // every op refused: nothing to write (the caller ends the open transaction)
	}
	for _, id := range touched {
		h := heads[string(id)]
		// h.GroupInfo is nil unless a commit of this batch published one.
		queueHeadUpdate(wb, id, h.Epoch, h.HeadSeq, h.HeadHash, h.GroupInfo)
	}
	// Members' changes first: a removed member's stream learns it before
	// it reads past its removal. One wake-up per group, at its new head.
	for _, n := range notes {
		wb.Queue(`SELECT pg_notify($1, $2)`, s.channel, n)
	}
	for _, id := range touched {
		wb.Queue(`SELECT pg_notify($1, $2)`, s.channel, "g"+hex.EncodeToString(id)+":"+strconv.FormatUint(heads[string(id)].HeadSeq, 10))
	}
	writes := wb.Len()
	wb.Queue(`COMMIT`)
	wr := conn.SendBatch(ctx, wb)
	for range writes {
		if _, err := wr.Exec(); err != nil {
			wr.Close()
			return nil, wrap(err) // COMMIT was skipped: nothing was written
		}
	}
	tag, err := wr.Exec()
	if cerr := wr.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCommit, err)
	}
	if tag.String() != "COMMIT" {
		// COMMIT of a failed transaction answers ROLLBACK: nothing was
		// written. (Not expected: a failed statement stops the pipeline.)
		return nil, errors.New("postgres: batch rolled back")
	}
	left := make(map[string]*store.GroupHead, len(heads))
	for g, h := range heads {
		c := *h
		c.GroupInfo = nil
		left[g] = &c
	}
	return left, nil
}
