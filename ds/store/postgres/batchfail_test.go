package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
)

// TestBatchFailureWritesNothing makes the database refuse one append of a
// batch, first at its INSERT (inside the write pipeline) and then at COMMIT
// (a deferred constraint trigger), while other appends to the same group
// share its batches. Whatever happens to a batch, an append is acknowledged
// exactly when its record is in the log, the chain stays whole, and the
// group goes on.
func TestBatchFailureWritesNothing(t *testing.T) {
	for _, when := range []string{"insert", "commit"} {
		t.Run(when, func(t *testing.T) {
			schema := pgtest.NewSchema()
			st := pgtest.Open(t, schema, true)
			ctx := context.Background()
			poison(t, schema, when)
			gid := []byte("batch-failure")
			if _, err := st.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now()); err != nil {
				t.Fatal(err)
			}
			w0, b0 := st.BatchStats()
			acked := map[string]bool{}
			var mu sync.Mutex
			for round := range 8 {
				var wg sync.WaitGroup
				for i := range 24 {
					body := []byte(fmt.Sprintf("r%d-m%d", round, i))
					if i == 11 {
						body = append([]byte("poison-"), body...)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, err := st.Append(ctx, store.Append{GroupID: gid, Sender: "alice", Now: time.Now(),
							Entries: []store.Entry{{Kind: store.KindApplication, WireFormat: 2, Body: body}}})
						if bytes.HasPrefix(body, []byte("poison-")) && err == nil {
							t.Errorf("%s: acknowledged although the database refused it", body)
						}
						if err == nil {
							mu.Lock()
							acked[string(body)] = true
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
			}
			w1, b1 := st.BatchStats()
			if b1-b0 >= w1-w0 {
				t.Fatalf("%d appends in %d transactions: no batch was formed, the test shows nothing", w1-w0, b1-b0)
			}
			recs, err := st.Records(ctx, gid, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.VerifyChain(0, store.GenesisHash(gid), recs); err != nil {
				t.Fatal(err)
			}
			inLog := map[string]bool{}
			for _, r := range recs {
				inLog[string(r.Body)] = true
			}
			for b := range acked {
				if !inLog[b] {
					t.Errorf("%s acknowledged but not in the log", b)
				}
			}
			for b := range inLog {
				if !acked[b] {
					t.Errorf("%s in the log but not acknowledged", b)
				}
			}
			// A refused INSERT costs only its own append (the others go
			// again alone); a failed COMMIT leaves its batch's outcome
			// unknown, so none of that batch is acknowledged.
			if when == "insert" && len(acked) != 8*23 {
				t.Errorf("only %d of %d honest appends went through", len(acked), 8*23)
			}
			// The group goes on.
			if _, err := st.Append(ctx, store.Append{GroupID: gid, Sender: "alice", Now: time.Now(),
				Entries: []store.Entry{{Kind: store.KindApplication, WireFormat: 2, Body: []byte("after")}}}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// poison makes the schema's records table refuse bodies that start with
// "poison-", at the INSERT or at COMMIT.
func poison(t *testing.T, schema, when string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	trigger := `CREATE TRIGGER poison BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION poison()`
	if when == "commit" {
		trigger = `CREATE CONSTRAINT TRIGGER poison AFTER INSERT ON records DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison()`
	}
	for _, q := range []string{
		`SET search_path = ` + schema,
		`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF position('\x706f69736f6e2d'::bytea in NEW.body) = 1 THEN
				RAISE EXCEPTION 'poisoned body';
			END IF;
			RETURN NEW;
		END $$`,
		trigger,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}
