package mls_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
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

// --- what a Save writes ---

// TestSaveWritesOnlyChanges: a Save after nothing changed writes nothing,
// a message from a sender whose ratchet is already stored rewrites one
// small ratchet record and nothing else, and the large records (tree,
// secrets) are rewritten only when the epoch changes.
func TestSaveWritesOnlyChanges(t *testing.T) {
	onBoth(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		seeded(t, 11)
		a := newGroupClient(t, "a", fastSuite, detConfig("inc a", false), nil)
		b := newClient(t, "b", fastSuite, detConfig("inc b", false))
		commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t))}}, nil, b)
		sa, sb := &recordingStore{Store: open(t)}, &recordingStore{Store: open(t)}
		save(t, a, sa)
		save(t, b, sb)
		save(t, b, sb)
		if len(sb.batches) != 1 {
			t.Fatalf("a Save with nothing changed wrote %d batches", len(sb.batches)-1)
		}
		last := func(s *recordingStore) *storage.Batch { return s.batches[len(s.batches)-1] }
		for i := range 3 {
			m, err := a.g.Encrypt([]byte("hello"), nil)
			if err != nil {
				t.Fatal(err)
			}
			save(t, a, sa)
			process(t, b, m)
			save(t, b, sb)
			for _, x := range []*storage.Batch{last(sa), last(sb)} {
				if len(x.MessageKeys) != 1 || len(x.Epochs) != 0 || len(x.DeleteEpochs) != 0 ||
					x.PendingCommit != nil || (i > 0 && x.State != nil) {
					t.Fatalf("message %d: batch has state %v, %d ratchet records, %d epochs", i, x.State != nil,
						len(x.MessageKeys), len(x.Epochs))
				}
				if n := len(x.MessageKeys[0].Data); n > 400 {
					t.Fatalf("a ratchet record of %d bytes for a two-member group", n)
				}
			}
		}
		// A commit: new state, the new epoch's record, the old epoch in its
		// past form; the pending commit is stored then cleared.
		res, err := a.g.Commit(nil)
		if err != nil {
			t.Fatal(err)
		}
		save(t, a, sa)
		if last(sa).PendingCommit == nil || len(last(sa).MessageKeys) != 1 {
			t.Fatalf("Commit: pending %v, %d ratchet records (the commit used a handshake key)",
				last(sa).PendingCommit != nil, len(last(sa).MessageKeys))
		}
		if err := a.g.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		save(t, a, sa)
		x := last(sa)
		if !x.ClearPendingCommit || x.State == nil || len(x.Epochs) != 2 {
			t.Fatalf("merge: clear %v, state %v, %d epoch records", x.ClearPendingCommit, x.State != nil, len(x.Epochs))
		}
		process(t, b, res.Commit)
		save(t, b, sb)
	})
}

// --- crash safety ---

// crashAt runs one Save of c's group to st that fails at step (a crash
// while the engine applies the batch: storage.WithFault aborts the Write
// there, and the engine must leave nothing of it). It reports whether the
// fault was reached; if not, the Save went through.
func crashAt(t *testing.T, c *client, st storage.Store, step int) bool {
	t.Helper()
	hit := false
	ctx := storage.WithFault(context.Background(), func(s int) error {
		if s == step {
			hit = true
			return errors.New("crash")
		}
		return nil
	})
	err := c.g.Save(ctx, st)
	if hit != (err != nil) {
		t.Fatalf("step %d: fault hit %v, Save returned %v", step, hit, err)
	}
	return hit
}

func marshal(t testing.TB, g *mls.Group) []byte {
	t.Helper()
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func load(t testing.TB, cfg *mls.Config, st storage.Store, id []byte) *mls.Group {
	t.Helper()
	g, err := mls.LoadGroup(context.Background(), cfg, st, id)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return g
}

// TestCrashWhileReceiving: bob processes a message (an application
// message, a proposal, a commit he merges) and saves; the process dies
// after Process, or at each step of the Write, or after Save returned.
// After every crash the reloaded group is exactly the state before the
// message (which then processes again, with the same result) or exactly
// the state after it (and the message is refused as already processed);
// never anything in between.
func TestCrashWhileReceiving(t *testing.T) {
	onBoth(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		seeded(t, 12)
		a := newGroupClient(t, "a", fastSuite, detConfig("crash-rx a", false), nil)
		b := newClient(t, "b", fastSuite, detConfig("crash-rx b", false))
		commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t))}}, nil, b)
		st := open(t)
		save(t, b, st)
		id := b.g.GroupID()

		type message struct {
			name string
			make func() []byte
		}
		for _, m := range []message{
			{"application", func() []byte {
				msg, err := a.g.Encrypt([]byte("app"), nil)
				if err != nil {
					t.Fatal(err)
				}
				return msg
			}},
			{"out of order", func() []byte {
				if _, err := a.g.Encrypt([]byte("skipped"), nil); err != nil {
					t.Fatal(err)
				}
				msg, err := a.g.Encrypt([]byte("ahead"), nil)
				if err != nil {
					t.Fatal(err)
				}
				return msg
			}},
			{"proposal", func() []byte {
				msg, err := a.g.ProposeRemove(1)
				if err != nil {
					t.Fatal(err)
				}
				mls.DropOwnProposals(a.g)
				return msg
			}},
			{"commit", func() []byte {
				res, err := a.g.Commit(&mls.CommitOptions{OnlyInline: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := a.g.MergePendingCommit(); err != nil {
					t.Fatal(err)
				}
				return res.Commit
			}},
		} {
			msg := m.make()
			before := marshal(t, b.g)
			epoch := b.g.Epoch()
			receive := func(g *mls.Group) (*mls.Received, error) {
				r, err := g.Process(msg)
				if err == nil && r.Commit != nil {
					err = g.MergeStagedCommit(r.Commit)
				}
				return r, err
			}
			// The reference outcome, on a copy.
			ref, err := mls.UnmarshalGroup(b.cfg, before)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := receive(ref); err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
			after := marshal(t, ref)

			check := func(where string, saved bool) {
				t.Helper()
				got := load(t, b.cfg, st, id)
				state := marshal(t, got)
				switch {
				case bytes.Equal(state, before):
					if saved {
						t.Fatalf("%s, %s: the saved message is not in the store", m.name, where)
					}
					if got.Epoch() != epoch {
						t.Fatalf("%s, %s: epoch %d", m.name, where, got.Epoch())
					}
					// Not saved as processed: it processes again.
					if _, err := receive(got); err != nil {
						t.Fatalf("%s, %s: reprocessing after the crash: %v", m.name, where, err)
					}
					if !bytes.Equal(marshal(t, got), after) {
						t.Fatalf("%s, %s: reprocessing gave another state", m.name, where)
					}
				case bytes.Equal(state, after):
					if !saved {
						t.Fatalf("%s, %s: a failed Write left the message processed", m.name, where)
					}
					if _, err := receive(got); err == nil {
						t.Fatalf("%s, %s: the message processed twice", m.name, where)
					}
				default:
					t.Fatalf("%s, %s: the store holds a state the group was never in", m.name, where)
				}
			}
			// Crash after Process, before Save.
			if _, err := receive(b.g); err != nil {
				t.Fatal(err)
			}
			check("after Process", false)
			// Crash at each step of the Write.
			steps := 0
			for {
				b.g = load(t, b.cfg, st, id)
				if _, err := receive(b.g); err != nil {
					t.Fatal(err)
				}
				if !crashAt(t, b, st, steps) {
					break
				}
				check(fmt.Sprintf("write step %d", steps), false)
				steps++
			}
			if steps == 0 {
				t.Fatalf("%s: the Write had %d steps; the fault hook is not reached", m.name, steps)
			}
			// The last loop's Save went through: crash after it.
			check("after Save", true)
			b.g = load(t, b.cfg, st, id)
			t.Logf("%s: crashed at %d write steps", m.name, steps)
		}
	})
}

// TestCrashWhileSending: alice encrypts, saves, and sends only once Save
// returned; the process dies at each step. After every reload her next
// message uses a generation no sent message used: no key and nonce is
// ever used twice on the wire (RFC 9420, Section 9.2). The same run with
// the order reversed (send, then save) reuses a generation, which shows
// the check can fail.
func TestCrashWhileSending(t *testing.T) {
	onBoth(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		for _, saveFirst := range []bool{true, false} {
			seeded(t, 13)
			a := newGroupClient(t, "a", fastSuite, detConfig("crash-tx a", false), nil)
			b := newClient(t, "b", fastSuite, detConfig("crash-tx b", false))
			commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t))}}, nil, b)
			st := open(t)
			save(t, a, st)
			id := a.g.GroupID()
			sent := map[uint32]bool{}
			reused := false
			gen := func(msg []byte) uint32 {
				_, _, g, ok := mls.SenderDataOf(b.g, msg)
				if !ok {
					t.Fatal("sender data does not decrypt")
				}
				return g
			}
			send := func(msg []byte) {
				g := gen(msg)
				if sent[g] {
					reused = true
				}
				sent[g] = true
			}
			for step := 0; step < 12; step++ {
				msg, err := a.g.Encrypt([]byte("x"), nil)
				if err != nil {
					t.Fatal(err)
				}
				if !saveFirst {
					send(msg)
				}
				crashed := crashAt(t, a, st, step%3)
				if saveFirst && !crashed {
					send(msg)
				}
				if crashed {
					a.g = load(t, a.cfg, st, id)
				}
			}
			if saveFirst && reused {
				t.Fatal("a generation was sent twice although every message was saved before it was sent")
			}
			if !saveFirst && !reused {
				t.Fatal("sending before saving reused no generation: the test cannot see reuse")
			}
		}
	})
}

// --- forward secrecy on disk ---

// storedBytes returns everything the store holds that the test can reach:
// for SQLite the raw database, -wal, -shm and -journal files; for the
// memory engine every record readable through the interface (epochs 0 to
// 20, ratchet records 0 to 3, the pending commit, the given KeyPackage
// refs).
func storedBytes(t *testing.T, e namedStore, st storage.Store, groupID []byte, refs ...[]byte) []byte {
	t.Helper()
	if p := e.path(); p != "" {
		var out []byte
		for _, f := range []string{p, p + "-wal", p + "-shm", p + "-journal"} {
			b, err := os.ReadFile(f)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			out = append(out, b...)
		}
		return out
	}
	ctx := context.Background()
	var out []byte
	if b, _, err := st.LoadGroup(ctx, groupID); err == nil {
		out = append(out, b...)
	}
	for e := range uint64(20) {
		if b, err := st.LoadEpoch(ctx, groupID, e); err == nil {
			out = append(out, b...)
		}
		for k := range uint32(4) {
			id := []byte{'r', byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}
			if b, err := st.MessageKey(ctx, groupID, e, id); err == nil {
				out = append(out, b...)
			}
		}
	}
	if b, err := st.PendingCommit(ctx, groupID); err == nil {
		out = append(out, b...)
	}
	for _, r := range refs {
		if b, err := st.KeyPackage(ctx, r); err == nil {
			out = append(out, b...)
		}
	}
	return out
}

// TestForwardSecrecyOnDisk: what the group has deleted is gone from the
// store: a kept out-of-order key once used, a ratchet secret once its
// generation is consumed, the KeyPackage init key once the Welcome is
// processed, an ended epoch's secrets (all but sender_data_secret while the
// epoch is retained, that too once it leaves the window). Each check has
// a positive control: the same secret is found while it is still needed,
// so the scan can see it.
func TestForwardSecrecyOnDisk(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			seeded(t, 14)
			ctx := context.Background()
			st := e.open(t)
			a := newGroupClient(t, "a", fastSuite, detConfig("fs a", false), nil)
			b := newClient(t, "b", fastSuite, &mls.Config{Rand: seededRand("fs b"), PastEpochs: 1, ResumptionPSKs: 2})
			kp := b.keyPackage(t)
			if err := mls.SaveKeyPackage(ctx, st, b.bundle); err != nil {
				t.Fatal(err)
			}
			id := a.g.GroupID()
			scan := func(secret []byte) bool {
				return bytes.Contains(storedBytes(t, e, st, id, kp.Ref()), secret)
			}
			mustHave := func(what string, secret []byte) {
				t.Helper()
				if !scan(secret) {
					t.Fatalf("positive control: %s is not found in the store while it is still needed", what)
				}
			}
			mustNotHave := func(what string, secret []byte) {
				t.Helper()
				if scan(secret) {
					t.Fatalf("%s is still in the store after it was deleted", what)
				}
			}
			initKey := bytes.Clone(b.bundle.InitKey)
			mustHave("the KeyPackage init key", initKey)

			res, err := a.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			if b.g, err = mls.JoinFromStore(ctx, b.cfg, st, res.Welcome, nil); err != nil {
				t.Fatal(err)
			}
			mustNotHave("the used KeyPackage's init key", initKey)

			// encryption_secret (RFC 9420, Section 9.2) is kept only as
			// the root of the secret tree, until a leaf is derived from
			// it; the key schedule keeps no copy.
			encSecret := mls.SecretTreeRoot(b.g)
			if encSecret == nil || mls.EncryptionSecretHeld(b.g) {
				t.Fatal("encryption_secret is not the untouched secret tree's root, or is kept beside it")
			}
			mustHave("encryption_secret as the secret tree's root", encSecret)
			if _, err := mls.LoadKeyPackage(ctx, st, kp.Ref()); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("used KeyPackage record: %v", err)
			}

			// Out of order: generations 0 and 1 kept, 2 consumed.
			var msgs [][]byte
			for range 4 {
				m, err := a.g.Encrypt([]byte("m"), nil)
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, m)
			}
			process(t, b, msgs[2])
			save(t, b, st)
			mustNotHave("encryption_secret once the secret tree has split it", encSecret)
			r, ok := mls.RatchetOf(b.g, a.g.LeafIndex(), true)
			if !ok || len(r.Kept) != 2 || r.Next != 3 {
				t.Fatalf("ratchet after generation 2: %+v", r)
			}
			k0, k1, s3 := r.Kept[0], r.Kept[1], r.Secret
			mustHave("kept key 0", k0[0])
			mustHave("kept nonce 0", k0[1])
			mustHave("ratchet secret 3", s3)
			process(t, b, msgs[0])
			save(t, b, st)
			mustNotHave("used kept key 0", k0[0])
			mustNotHave("used kept nonce 0", k0[1])
			mustHave("kept key 1", k1[0])
			process(t, b, msgs[3])
			save(t, b, st)
			mustNotHave("consumed ratchet secret 3", s3)

			// Epoch secrets: the ended epoch keeps only
			// sender_data_secret, and loses it when it leaves the window
			// (PastEpochs 1); its resumption_psk is kept for
			// ResumptionPSKs (2) epochs (RFC 9420, Section 8.6).
			// encryption_secret (secret 1) is already gone (above).
			secrets := mls.EpochSecrets(b.g)
			for i, s := range secrets {
				if i == 1 {
					if len(s) != 0 {
						t.Fatal("encryption_secret kept in the key schedule")
					}
					continue
				}
				mustHave(fmt.Sprintf("current epoch secret %d", i), s)
			}
			commit(t, a, nil, []*client{b})
			save(t, b, st)
			mustHave("sender_data_secret of the retained past epoch", secrets[0])
			mustHave("kept key 1 of the retained past epoch", k1[0])
			mustHave("resumption_psk of the previous epoch", secrets[6])
			for i, s := range secrets[1:] {
				if i+1 != 6 && i+1 != 1 {
					mustNotHave(fmt.Sprintf("ended epoch's secret %d", i+1), s)
				}
			}
			commit(t, a, nil, []*client{b})
			save(t, b, st)
			mustNotHave("sender_data_secret of an epoch outside the window", secrets[0])
			mustNotHave("kept key of an epoch outside the window", k1[0])
			mustNotHave("resumption_psk outside ResumptionPSKs", secrets[6])

			// Bob's first leaf key (from the KeyPackage) goes once he
			// commits a new path.
			leafKey := bytes.Clone(b.bundle.LeafKey)
			mustHave("bob's leaf key", leafKey)
			commit(t, b, nil, []*client{a})
			save(t, b, st)
			mustNotHave("bob's replaced leaf key", leafKey)
		})
	}
}

// --- KeyPackages ---

// TestJoinFromStoreAtomic: joining stores the group and deletes the
// KeyPackage record in one Write. A Write failing at any step leaves both
// as they were (the Welcome can be processed again); a last-resort
// KeyPackage's record is kept.
func TestJoinFromStoreAtomic(t *testing.T) {
	onBoth(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		seeded(t, 15)
		ctx := context.Background()
		st := open(t)
		a := newGroupClient(t, "a", fastSuite, detConfig("join a", false), nil)
		b := newClient(t, "b", fastSuite, detConfig("join b", false))
		kp := b.keyPackage(t)
		if err := mls.SaveKeyPackage(ctx, st, b.bundle); err != nil {
			t.Fatal(err)
		}
		got, err := mls.LoadKeyPackage(ctx, st, kp.Ref())
		if err != nil || !bytes.Equal(got.InitKey, b.bundle.InitKey) || !bytes.Equal(got.LeafKey, b.bundle.LeafKey) {
			t.Fatalf("KeyPackage round trip: %v", err)
		}
		res, err := a.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.g.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		for step := 0; ; step++ {
			hit := false
			fctx := storage.WithFault(ctx, func(s int) error {
				if s == step {
					hit = true
					return errors.New("crash")
				}
				return nil
			})
			g, err := mls.JoinFromStore(fctx, b.cfg, st, res.Welcome, nil)
			if !hit {
				if err != nil {
					t.Fatal(err)
				}
				b.g = g
				break
			}
			if err == nil {
				t.Fatalf("step %d: join succeeded although the Write failed", step)
			}
			if _, err := mls.LoadKeyPackage(ctx, st, kp.Ref()); err != nil {
				t.Fatalf("step %d: the KeyPackage is gone after a failed join: %v", step, err)
			}
			if _, err := mls.LoadGroup(ctx, b.cfg, st, a.g.GroupID()); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("step %d: a failed join left a group: %v", step, err)
			}
		}
		if _, err := mls.LoadKeyPackage(ctx, st, kp.Ref()); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the used KeyPackage is still stored: %v", err)
		}
		reload(t, b, st)
		checkAgree(t, []*client{a, b})
		// a's path is encrypted to b's leaf key, which came from the
		// stored bundle.
		commit(t, a, nil, []*client{b})
		save(t, b, st)
		if _, err := mls.JoinFromStore(ctx, b.cfg, st, res.Welcome, nil); !errors.Is(err, mls.ErrNoMatchingKeyPackage) {
			t.Fatalf("second join with the same Welcome: %v", err)
		}

		// A last-resort KeyPackage stays.
		c := newClient(t, "c", fastSuite, detConfig("join c", false))
		lr := c.keyPackageWith(t, &mls.KeyPackageOptions{LastResort: true})
		if err := mls.SaveKeyPackage(ctx, st, c.bundle); err != nil {
			t.Fatal(err)
		}
		res, err = a.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(lr)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.g.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		deliver(t, a, res.Commit, b)
		other := open(t) // c's own store: the group ID is shared with b's in st
		if err := mls.SaveKeyPackage(ctx, other, c.bundle); err != nil {
			t.Fatal(err)
		}
		if c.g, err = mls.JoinFromStore(ctx, c.cfg, other, res.Welcome, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := mls.LoadKeyPackage(ctx, other, lr.Ref()); err != nil {
			t.Fatalf("last-resort KeyPackage deleted: %v", err)
		}
		checkAgree(t, []*client{a, b, c})
	})
}

// A KeyPackage record under the wrong reference, or with keys that do not
// match, is refused.
func TestLoadKeyPackageChecks(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	b := newClient(t, "b", fastSuite, &mls.Config{})
	kp := b.keyPackage(t)
	c := newClient(t, "c", fastSuite, &mls.Config{})
	c.keyPackage(t)
	if err := mls.SaveKeyPackage(ctx, st, b.bundle); err != nil {
		t.Fatal(err)
	}
	rec, err := st.KeyPackage(ctx, kp.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Write(ctx, &storage.Batch{KeyPackages: []storage.Record{{Key: c.bundle.KeyPackage.Ref(), Value: rec}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := mls.LoadKeyPackage(ctx, st, c.bundle.KeyPackage.Ref()); !errors.Is(err, mls.ErrCorruptState) {
		t.Fatalf("record under another ref: %v", err)
	}
	swapped := *b.bundle
	swapped.InitKey, swapped.LeafKey = b.bundle.LeafKey, b.bundle.InitKey
	if err := mls.SaveKeyPackage(ctx, st, &swapped); err != nil {
		t.Fatal(err)
	}
	if _, err := mls.LoadKeyPackage(ctx, st, kp.Ref()); !errors.Is(err, mls.ErrCorruptState) {
		t.Fatalf("swapped keys: %v", err)
	}
}

// External PSKs saved in the store serve a PSK proposal.
func TestPSKsFromStore(t *testing.T) {
	onBoth(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		seeded(t, 16)
		ctx := context.Background()
		sa, sb := open(t), open(t)
		for _, s := range []storage.Store{sa, sb} {
			if err := mls.SavePSK(ctx, s, []byte("psk id"), bytes.Repeat([]byte{9}, 32)); err != nil {
				t.Fatal(err)
			}
		}
		a := newGroupClient(t, "a", fastSuite, &mls.Config{Rand: seededRand("psk a"), PSKs: mls.PSKsFromStore(sa)}, nil)
		b := newClient(t, "b", fastSuite, &mls.Config{Rand: seededRand("psk b"), PSKs: mls.PSKsFromStore(sb)})
		commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t)),
			mls.ExternalPSKProposal([]byte("psk id"))}}, nil, b)
		checkAgree(t, []*client{a, b})
		if _, err := a.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.ExternalPSKProposal([]byte("unknown"))}}); !errors.Is(err, mls.ErrMissingPSK) {
			t.Fatalf("unknown PSK: %v", err)
		}
	})
}

// A tolerance too large to restore is refused when saving, not when
// loading.
func TestSaveRefusesHugeTolerance(t *testing.T) {
	a := newGroupClient(t, "a", fastSuite, &mls.Config{OutOfOrderTolerance: 5000}, nil)
	if err := a.g.Save(context.Background(), memory.New()); err == nil {
		t.Fatal("saved a group whose out-of-order window cannot be restored")
	}
}

// A group that merged a ReInit is saved inactive, and after a reload its
// members still start the new group from it (the ReInit parameters and the
// resumption PSK are part of the saved state).
func TestSaveLoadReInit(t *testing.T) {
	onBoth(t, func(t *testing.T, open func(testing.TB) storage.Store) {
		seeded(t, 17)
		a := newGroupClient(t, "a", fastSuite, detConfig("ri a", false), nil)
		b := newClient(t, "b", fastSuite, detConfig("ri b", false))
		commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t))}}, nil, b)
		commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.ReInitProposal([]byte("group 2"), fastSuite, nil)}}, []*client{b})
		sa, sb := open(t), open(t)
		for _, c := range []*client{a, b} {
			st := map[*client]storage.Store{a: sa, b: sb}[c]
			save(t, c, st)
			reload(t, c, st)
			if c.g.Active() {
				t.Fatalf("%s active after ReInit and reload", c.name)
			}
		}
		nb := newClient(t, "b", fastSuite, b.cfg)
		kp := nb.keyPackage(t)
		ng, res, err := a.g.ReInitGroup([]*mls.KeyPackage{kp}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ng.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		if nb.g, err = mls.JoinFromWelcome(nb.cfg, res.Welcome, nb.bundle, &mls.JoinOptions{Previous: b.g}); err != nil {
			t.Fatalf("joining the new group with the reloaded old one: %v", err)
		}
		checkAgree(t, []*client{{name: "a", g: ng}, nb})
	})
}
