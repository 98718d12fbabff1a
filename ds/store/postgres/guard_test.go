package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mlskit/mlskit/ds/store"
	"github.com/mlskit/mlskit/ds/store/postgres/pgtest"
)

// TestGuardedAppendsTwoNodes: a node writes a group's batches in one round
// trip on the head its own last batch left. When another node has written
// to the group since (a message, a commit that removes a member, a
// priority), the database refuses the cached head and the batch is judged
// again on what it reads: the removed member is refused, a commit against
// a priority holder is deferred, a replayed body is found, every record
// takes the next sequence number, and the log stays one chain.
func TestGuardedAppendsTwoNodes(t *testing.T) {
	schema := pgtest.NewSchema()
	a := pgtest.Open(t, schema, true)
	b := pgtest.Open(t, schema, false)
	ctx := context.Background()
	gid := []byte("guarded")
	now := time.Now()
	if _, err := a.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, now); err != nil {
		t.Fatal(err)
	}
	app := func(sender string, epoch uint64, body string) store.Append {
		return store.Append{GroupID: gid, Sender: sender, Epoch: epoch, Window: 2, Now: time.Now(),
			Entries: []store.Entry{{Kind: store.KindApplication, WireFormat: 2, Body: []byte(body)}}}
	}
	commit := func(sender string, epoch uint64, body string) store.Append {
		c := app(sender, epoch, body)
		c.Entries[0].Kind, c.Commit = store.KindCommit, true
		return c
	}
	must := func(_ []store.Record, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	c := commit("alice", 0, "add bob and carol")
	c.AddMembers = []string{"bob", "carol"}
	must(a.Append(ctx, c))
	for i := range 5 {
		must(a.Append(ctx, app("bob", 1, fmt.Sprint("bob ", i))))
	}
	g0, u0 := a.GuardStats()
	if g0 < 4 {
		t.Fatalf("%d of node a's 6 batches written on its cached head, want the 5 after the first", g0)
	}

	// Node b removes carol; node a still holds the head from before.
	rm := commit("alice", 1, "remove carol")
	rm.RemoveMembers = []string{"carol"}
	must(b.Append(ctx, rm))
	if _, err := a.Append(ctx, app("carol", 2, "carol after her removal")); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("removed member's message on a node with an old head: %v", err)
	}
	// Node b writes a message; node a's next one goes after it.
	must(b.Append(ctx, app("bob", 2, "bob on node b")))
	must(a.Append(ctx, app("bob", 2, "bob on node a")))
	// A body node b wrote is a duplicate on node a, at its sequence number.
	recs, err := b.Append(ctx, app("bob", 2, "written once"))
	if err != nil {
		t.Fatal(err)
	}
	must(a.Append(ctx, app("bob", 2, "just cached")))
	var dup *store.DuplicateError
	if _, err := a.Append(ctx, app("bob", 2, "written once")); !errors.As(err, &dup) || dup.Seq != recs[0].Seq {
		t.Fatalf("replay of a body written by node b: %v, want a duplicate of %d", err, recs[0].Seq)
	}
	// A replay of a body node a wrote itself, on its cached head.
	if _, err := a.Append(ctx, app("bob", 2, "just cached")); !errors.As(err, &dup) {
		t.Fatalf("replay on the cached head: %v", err)
	}
	// Node b gives bob the right to commit epoch 2; node a defers alice.
	must(a.Append(ctx, app("bob", 2, "head cached again")))
	if err := b.SetPriority(ctx, gid, "bob", 2, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, commit("alice", 2, "alice against bob's priority")); !errors.Is(err, store.ErrDeferred) {
		t.Fatalf("commit against a priority set by another node: %v", err)
	}
	must(a.Append(ctx, commit("bob", 2, "bob's commit")))
	must(a.Append(ctx, app("alice", 3, "after")))

	_, u1 := a.GuardStats()
	if u1-u0 < 4 {
		t.Fatalf("%d batches of node a found their cached head refused, want at least 4", u1-u0)
	}
	all, err := b.Records(ctx, gid, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyChain(0, store.GenesisHash(gid), all); err != nil {
		t.Fatal(err)
	}
	for i, r := range all {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has sequence number %d", i, r.Seq)
		}
	}
	if len(all) != 14 {
		t.Fatalf("%d records, want 14", len(all))
	}
}

// TestGuardedAppendsZeroByteGroupID: a group id may hold any bytes; one
// with a zero byte still has its batches written on its cached head, not
// sent op by op down the slowest path.
func TestGuardedAppendsZeroByteGroupID(t *testing.T) {
	st := pgtest.Open(t, pgtest.NewSchema(), true)
	ctx := context.Background()
	gid := []byte("zero\x00byte")
	if _, err := st.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		a := store.Append{GroupID: gid, Sender: "alice", Window: 2, Now: time.Now(),
			Entries: []store.Entry{{Kind: store.KindApplication, WireFormat: 2, Body: []byte(fmt.Sprint("m", i))}}}
		if _, err := st.Append(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if g, u := st.GuardStats(); g != 3 || u != 0 {
		t.Fatalf("%d batches written on the cached head and %d sent back, want 3 and 0", g, u)
	}
}
