package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/mlskit/mlskit/ds/store"
)

// TestMessageAppendsInOneBatch puts message appends (which keep their
// group's head in memory for the transaction and run without a savepoint)
// in one transaction with refusals and a commit of the same group, and
// checks that each gets what it would alone and that the log and the head
// come out whole.
func TestMessageAppendsInOneBatch(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gid := []byte("batched")
	if _, err := s.CreateGroup(ctx, gid, "alice", nil, store.Policy{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	app := func(sender string, epoch uint64, body string) store.Append {
		return store.Append{GroupID: gid, Sender: sender, Epoch: epoch, Now: time.Now(),
			Entries: []store.Entry{{Kind: store.KindApplication, WireFormat: 2, Body: []byte(body)}}}
	}
	commit := func(sender string, epoch uint64, body string, add ...string) store.Append {
		a := app(sender, epoch, body)
		a.Entries[0].Kind, a.Commit, a.AddMembers = store.KindCommit, true, add
		return a
	}
	if _, err := s.Append(ctx, commit("alice", 0, "add bob", "bob")); err != nil {
		t.Fatal(err)
	}
	first, err := s.Append(ctx, app("alice", 1, "m0"))
	if err != nil {
		t.Fatal(err)
	}

	unknown := app("alice", 1, "nowhere")
	unknown.GroupID = []byte("no such group")
	steps := []struct {
		a    store.Append
		want func(error) bool
	}{
		{app("alice", 1, "m1"), isNil},
		{app("bob", 1, "m2"), isNil},
		{app("alice", 1, "m0"), func(err error) bool { // already in the log
			var d *store.DuplicateError
			return errors.As(err, &d) && d.Seq == first[0].Seq
		}},
		{app("alice", 1, "m1"), func(err error) bool { // earlier in this batch
			var d *store.DuplicateError
			return errors.As(err, &d) && d.Seq == first[0].Seq+1
		}},
		{app("carol", 1, "not yet"), is(store.ErrNotMember)},
		{commit("alice", 1, "add carol", "carol"), isNil},
		{app("carol", 2, "m3"), isNil},
		{app("bob", 1, "late"), func(err error) bool { // window 0
			var e *store.StaleEpochError
			return errors.As(err, &e) && e.CurrentEpoch == 2
		}},
		{unknown, is(store.ErrNotFound)},
		{app("bob", 2, "m4"), isNil},
	}

	// Hold the writer in a transaction of its own while the steps queue
	// in order behind it: they then share the next one.
	w0, t0 := s.BatchStats()
	started, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.tx(ctx, func(context.Context, *sql.Tx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	errs := make([]chan error, len(steps))
	for i, st := range steps {
		errs[i] = make(chan error, 1)
		go func() {
			_, err := s.Append(ctx, st.a)
			errs[i] <- err
		}()
		for s.batch.Queued() != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		if err := <-errs[i]; !st.want(err) {
			t.Errorf("step %d (%s from %s): %v", i, st.a.Entries[0].Body, st.a.Sender, err)
		}
	}
	if w, tr := s.BatchStats(); w-w0 != uint64(len(steps)+1) || tr-t0 != 2 {
		t.Fatalf("%d writes in %d transactions, want %d in 2: the steps did not share one", w-w0, tr-t0, len(steps)+1)
	}
	if n := s.split.Load(); n != 0 {
		t.Fatalf("%d batches failed and went again op by op", n)
	}

	recs, err := s.Records(ctx, gid, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyChain(0, store.GenesisHash(gid), recs); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, r := range recs {
		bodies = append(bodies, string(r.Body))
	}
	want := []string{"add bob", "m0", "m1", "m2", "add carol", "m3", "m4"}
	if len(bodies) != len(want) {
		t.Fatalf("log %q, want %q", bodies, want)
	}
	for i := range want {
		if bodies[i] != want[i] {
			t.Fatalf("log %q, want %q", bodies, want)
		}
	}
	last := recs[len(recs)-1]
	g, err := s.Head(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if g.Epoch != 2 || g.HeadSeq != last.Seq || string(g.HeadHash) != string(last.ChainHash) {
		t.Fatalf("head epoch %d seq %d, want 2 and %d (or its hash differs)", g.Epoch, g.HeadSeq, last.Seq)
	}
	// And the group goes on from that head.
	if _, err := s.Append(ctx, app("carol", 2, "after")); err != nil {
		t.Fatal(err)
	}
}

func isNil(err error) bool { return err == nil }

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}
