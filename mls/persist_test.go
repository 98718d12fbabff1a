package mls_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/memory"
	"github.com/mlskit/mlskit/storage/sqlite"
)

// TestLateApplicationMessage: an application message of the previous epoch
// still decrypts after a commit (RFC 9420, Section 9.2 lets a member keep
// the secret tree of past epochs), and not once the epoch has left the
// retention window.
func TestLateApplicationMessage(t *testing.T) {
	seeded(t, 1)
	a := newGroupClient(t, "a", fastSuite, detConfig("late a", false), nil)
	b := newClient(t, "b", fastSuite, &mls.Config{Rand: seededRand("late b"), PastEpochs: 1})
	commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t))}}, nil, b)
	late, err := a.g.Encrypt([]byte("late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tooLate, err := a.g.Encrypt([]byte("too late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, a, nil, []*client{b})
	r, err := b.g.Process(late)
	if err != nil {
		t.Fatalf("late message of the previous epoch: %v", err)
	}
	if !bytes.Equal(r.Application, []byte("late")) || r.Epoch != 1 {
		t.Fatalf("got %q of epoch %d", r.Application, r.Epoch)
	}
	commit(t, a, nil, []*client{b})
	if _, err := b.g.Process(tooLate); !errors.Is(err, mls.ErrWrongEpoch) {
		t.Fatalf("message of an epoch outside the window: got %v, want ErrWrongEpoch", err)
	}
}

// --- stores ---

type namedStore struct {
	name string
	open func(t testing.TB) storage.Store
	// path is the SQLite file, for the raw-bytes tests; "" for memory.
	path func() string
}

// engines returns a fresh memory store and a fresh SQLite store (in a
// temporary directory) for each test that runs on both.
func engines() []namedStore {
	var path string
	return []namedStore{
		{name: "memory", open: func(t testing.TB) storage.Store { return memory.New() }, path: func() string { return "" }},
		{name: "sqlite", open: func(t testing.TB) storage.Store {
			path = filepath.Join(t.TempDir(), "mls.db")
			s, err := sqlite.Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}, path: func() string { return path }},
	}
}

func onBoth(t *testing.T, f func(t *testing.T, open func(testing.TB) storage.Store)) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) { f(t, e.open) })
	}
}

func save(t testing.TB, c *client, st storage.Store) {
	t.Helper()
	if err := c.g.Save(context.Background(), st); err != nil {
		t.Fatalf("%s: save: %v", c.name, err)
	}
}

// reload replaces c's group with what st holds, after checking that it is
// the same state, byte for byte.
func reload(t testing.TB, c *client, st storage.Store) {
	t.Helper()
	want, err := c.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	g, err := mls.LoadGroup(context.Background(), c.cfg, st, c.g.GroupID())
	if err != nil {
		t.Fatalf("%s: load: %v", c.name, err)
	}
	got, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: reloaded state differs from the saved group (%d vs %d bytes)", c.name, len(got), len(want))
	}
	c.g = g
}

// TestSaveLoadRoundTrip drives a three-member group through everything the
// saved state holds (out-of-order keys, cached proposals including an own
// Update that rotates the signature key, retained past epochs, a pending
// commit, resumption PSKs), saving and reloading every member after every
// step; the reloaded group must equal the saved one and carry on.
func TestSaveLoadRoundTrip(t *testing.T) {
	onBoth(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		seeded(t, 7)
		st := open(t)
		a := newGroupClient(t, "a", fastSuite, detConfig("rt a", false), nil)
		b := newClient(t, "b", fastSuite, detConfig("rt b", false))
		c := newClient(t, "c", fastSuite, detConfig("rt c", true))
		commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t)), mls.AddProposal(c.keyPackage(t))}}, nil, b, c)
		all := []*client{a, b, c}
		// Each member in its own store would be the real setup; one store
		// with three group IDs would collide, so each gets its own.
		stores := map[*client]storage.Store{a: st, b: open(t), c: open(t)}
		cycle := func(what string) {
			t.Helper()
			for _, m := range all {
				save(t, m, stores[m])
				reload(t, m, stores[m])
			}
		}
		cycle("joined")
		checkAgree(t, all)
		cycle("after messages")

		// Out of order: b reads a's third message first, keeping two keys.
		var msgs [][]byte
		for i := range 3 {
			m, err := a.g.Encrypt([]byte(fmt.Sprint("m", i)), nil)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, m)
		}
		cycle("a sent")
		process(t, b, msgs[2])
		cycle("b kept two keys")
		if r, _ := mls.RatchetOf(b.g, a.g.LeafIndex(), true); len(r.Kept) != 2 {
			t.Fatalf("b keeps %d keys, want 2", len(r.Kept))
		}
		process(t, b, msgs[0])
		cycle("b used one kept key")
		if _, err := b.g.Process(msgs[0]); !errors.Is(err, mls.ErrKeyUnavailable) {
			t.Fatalf("replay after reload: %v", err)
		}
		process(t, c, msgs[1])
		process(t, c, msgs[0])
		process(t, c, msgs[2])

		// Cached proposals: b proposes an Update rotating its key, c a
		// Remove... of nobody; a proposes an external PSK-free Update.
		newSig, err := mls.GenerateSignatureKeyPair(fastSuite, nil)
		if err != nil {
			t.Fatal(err)
		}
		cred := mls.BasicCredential([]byte("b"))
		up, err := b.g.ProposeUpdate(&cred, newSig)
		if err != nil {
			t.Fatal(err)
		}
		cycle("b proposed")
		deliver(t, b, up, a, c)
		rp, err := a.g.ProposeResumptionPSK(a.g.Epoch())
		if err != nil {
			t.Fatal(err)
		}
		cycle("a proposed")
		deliver(t, a, rp, b, c)
		cycle("proposals cached")
		if n := len(b.g.PendingProposals()); n != 2 {
			t.Fatalf("b has %d proposals cached, want 2", n)
		}

		// c commits them; the commit is pending at c across a reload.
		res, err := c.g.Commit(nil)
		if err != nil {
			t.Fatal(err)
		}
		cycle("c's commit pending")
		if !c.g.HasPendingCommit() {
			t.Fatal("pending commit lost")
		}
		deliver(t, c, res.Commit, a, b)
		if err := c.g.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		cycle("merged")
		checkAgree(t, all)
		if got := b.g.KeyUpdateStatus(); got.Epoch != b.g.Epoch() {
			t.Fatalf("b's update was committed in epoch %d, status says %d", b.g.Epoch(), got.Epoch)
		}

		// A late message of the previous epoch still decrypts after the
		// reload.
		late, err := a.g.Encrypt([]byte("late"), nil)
		if err != nil {
			t.Fatal(err)
		}
		cycle("before commit")
		commit(t, a, nil, []*client{b, c})
		cycle("past epoch kept")
		if p := mls.PastEpochs(b.g); len(p) == 0 || p[0] != b.g.Epoch()-1 {
			t.Fatalf("b keeps past epochs %v", p)
		}
		if r := process(t, b, late); string(r.Application) != "late" {
			t.Fatalf("late message: %q", r.Application)
		}
		cycle("late read")
		for range 4 {
			commit(t, b, nil, []*client{a, c})
			cycle("more epochs")
		}
		checkAgree(t, all)
		if p := mls.PastEpochs(a.g); len(p) != mls.DefaultPastEpochs {
			t.Fatalf("a keeps %d past epochs, want %d", len(p), mls.DefaultPastEpochs)
		}
		// Remove c: its saved state becomes a tombstone that still loads.
		commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.RemoveProposal(c.g.LeafIndex())}}, []*client{b, c})
		if c.g.Active() {
			t.Fatal("c still active")
		}
		cycle("c removed")
		if _, err := c.g.Encrypt([]byte("x"), nil); !errors.Is(err, mls.ErrRemoved) {
			t.Fatalf("removed member after reload: %v", err)
		}
		checkAgree(t, []*client{a, b})
	})
}
