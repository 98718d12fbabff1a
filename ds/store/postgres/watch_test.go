package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
)

// TestWatchResync: NOTIFYs sent while no LISTEN is up reach nobody, so
// Watch sends All each time its LISTEN is (re)established: at start and
// after its connection is lost, so subscribers read again what they may
// have missed. A missed wake-up left a subscriber waiting for good (seen as
// a hung TestAdversaryUnsolicitedWelcome under load).
func TestWatchResync(t *testing.T) {
	schema := pgtest.NewSchema()
	s := pgtest.Open(t, schema, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan store.Notification, 64)
	go s.Watch(ctx, func(n store.Notification) { got <- n })
	next := func(what string) store.Notification {
		t.Helper()
		select {
		case n := <-got:
			return n
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification: %s", what)
		}
		return store.Notification{}
	}
	if n := next("at start"); !n.All {
		t.Fatalf("first notification %+v, want All", n)
	}
	// The listener's connection dies (a restart, a network cut): the
	// NOTIFY of a group created meanwhile is lost, and Watch says so.
	conn, err := pgx.Connect(ctx, pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1`,
		`LISTEN `+pgx.Identifier{"mlsd_" + schema}.Sanitize()).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d listeners (%v)", killed, err)
	}
	if _, err := s.CreateGroup(ctx, []byte("g"), "alice", nil, store.Policy{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for {
		n := next("after the listener's connection was lost")
		if n.All {
			break
		}
		// The creator's notification may still have made it, if the
		// backend was slow to go.
		if n.ClientID != "alice" {
			t.Fatalf("notification %+v before All", n)
		}
	}
	// And it listens again.
	if _, err := s.Append(ctx, store.Append{GroupID: []byte("g"), Sender: "alice", Now: time.Now(),
		Entries: []store.Entry{{Kind: store.KindApplication, WireFormat: 2, Body: []byte("m")}}}); err != nil {
		t.Fatal(err)
	}
	if n := next("after reconnecting"); string(n.GroupID) != "g" || n.Seq != 1 {
		t.Fatalf("notification %+v, want g at 1", n)
	}
}
