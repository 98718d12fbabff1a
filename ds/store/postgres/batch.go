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
func (s *Store) appendBatch(ctx context.Context, ops []*store.Op[*appendOp]) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return wrap(err)
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
	heads := map[string]*store.GroupHead{}
	active := map[string]bool{}   // group id + "\x00" + client
	bodies := map[string]uint64{} // group id + "\x00" + body hash -> seq
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
			heads[string(h.ID)] = h
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
			active[string(g)+"\x00"+c] = true
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
			bodies[string(g)+"\x00"+string(h)] = uint64(seq)
		}
		return rows.Err()
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return wrap(err)
	}

	// The rules, op by op, in order, on the state the earlier ops left.
	wb := &pgx.Batch{}
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
				return lookupErr
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
	if len(touched) == 0 {
		return nil // every op refused: nothing to write (the deferred ROLLBACK ends the transaction)
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
			return wrap(err) // COMMIT was skipped: nothing was written
		}
	}
	tag, err := wr.Exec()
	if cerr := wr.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errCommit, err)
	}
	open = false
	if tag.String() != "COMMIT" {
		// COMMIT of a failed transaction answers ROLLBACK: nothing was
		// written. (Not expected: a failed statement stops the pipeline.)
		return errors.New("postgres: batch rolled back")
	}
	return nil
}
