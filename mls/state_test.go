package mls_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage"
	"github.com/mlskit/mlskit/storage/memory"
	"github.com/mlskit/mlskit/storage/storagetest"
)

// fixedClock is a Config.Now that the test moves by hand.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

// goldenGroup builds, deterministically, a group whose saved state uses
// every part of the format: bob holds an out-of-order window with kept
// keys, a retained past epoch with ratchets, cached proposals (his own
// Update rotating his signature key, with its private keys, and alice's
// PSK proposal), resumption PSKs, key-update tracking, and a pending own
// commit. It returns bob's group.
func goldenGroup(t *testing.T) *mls.Group {
	t.Helper()
	seeded(t, 2024)
	clock := &fixedClock{time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg := func(salt string) *mls.Config {
		return &mls.Config{Rand: seededRand(salt), Now: clock.now, PastEpochs: 2}
	}
	a := newGroupClient(t, "alice", fastSuite, cfg("golden alice"), nil)
	b := newClient(t, "bob", fastSuite, cfg("golden bob"))
	c := newClient(t, "carol", fastSuite, cfg("golden carol"))
	commit(t, a, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(b.keyPackage(t)), mls.AddProposal(c.keyPackage(t))}}, nil, b, c)
	clock.t = clock.t.Add(time.Hour)
	// A message of epoch 1 that bob reads out of order, then a commit.
	var msgs [][]byte
	for range 3 {
		m, err := a.g.Encrypt([]byte("epoch 1"), []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	process(t, b, msgs[2])
	bm, err := b.g.Encrypt([]byte("from bob"), nil)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, b, bm, a, c)
	clock.t = clock.t.Add(time.Hour)
	commit(t, c, nil, []*client{a, b})
	// Epoch 2: one message bob has not read yet.
	if _, err := a.g.Encrypt([]byte("epoch 2"), nil); err != nil {
		t.Fatal(err)
	}
	commit(t, a, nil, []*client{b, c})
	// Epoch 3: out of order again, and proposals.
	msgs = msgs[:0]
	for range 4 {
		m, err := a.g.Encrypt([]byte("epoch 3"), nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	process(t, b, msgs[3])
	process(t, b, msgs[1])
	newSig, err := mls.GenerateSignatureKeyPair(fastSuite, nil)
	if err != nil {
		t.Fatal(err)
	}
	cred := mls.BasicCredential([]byte("bob"))
	up, err := b.g.ProposeUpdate(&cred, newSig)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, b, up, a, c)
	psk, err := a.g.ProposeResumptionPSK(1)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, a, psk, b, c)
	// Bob commits a's proposal (his own Update cannot be in his commit);
	// the commit stays pending.
	if _, err := b.g.Commit(nil); err != nil {
		t.Fatal(err)
	}
	return b.g
}

// TestStateGolden pins the saved format: the state of goldenGroup must
// encode to testdata/group-state-v2.golden byte for byte, and, written at
// the old version 1 of the current epoch record, to group-state-v1.golden
// (so the version 1 writer this build keeps for tests is the one that
// wrote that file). A change to any record's encoding fails here; if it is
// intended, bump the record's format version (state.go), keep this file and
// a test that it still loads, and add a golden file for the new version
// (docs/STORAGE.md).
func TestStateGolden(t *testing.T) {
	g := goldenGroup(t)
	got, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// The scenario must be deterministic, or the golden file proves nothing.
	again, err := goldenGroup(t).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, again) {
		t.Fatal("the golden scenario is not deterministic")
	}
	storagetest.Golden(t, "group-state-v2", got)
	mls.WithCurrentFormat1(t, func() {
		v1, err := goldenGroup(t).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		storagetest.Golden(t, "group-state-v1", v1)
	})
}

// TestStateGoldenLoads: each golden file still loads, carries on (the
// pending commit merges, the kept keys work), and encodes back to the same
// bytes at its own version. This is the test that keeps old saved state
// readable. A version 1 state, read by this build, has no last_join: it is
// taken as the current epoch.
func TestStateGoldenLoads(t *testing.T) {
	for _, v := range []string{"v1", "v2"} {
		t.Run(v, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "group-state-"+v+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			roundTrip := func() *mls.Group {
				g, err := mls.UnmarshalGroup(&mls.Config{}, data)
				if err != nil {
					t.Fatal(err)
				}
				again, err := g.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, data) {
					t.Fatal("the golden state does not encode back to itself")
				}
				return g
			}
			var g *mls.Group
			if v == "v1" {
				mls.WithCurrentFormat1(t, func() { roundTrip() })
				if g, err = mls.UnmarshalGroup(&mls.Config{}, data); err != nil {
					t.Fatal(err)
				}
				if mls.LastJoin(g) != g.Epoch() {
					t.Fatalf("a version 1 state read with last_join %d, want its epoch %d", mls.LastJoin(g), g.Epoch())
				}
			} else {
				g = roundTrip()
				if mls.LastJoin(g) != 1 {
					t.Fatalf("last_join %d, want 1 (bob and carol joined in epoch 1)", mls.LastJoin(g))
				}
			}
			if !g.HasPendingCommit() || len(g.PendingProposals()) != 2 || len(mls.PastEpochs(g)) != 2 {
				t.Fatalf("golden state: pending %v, %d proposals, past epochs %v", g.HasPendingCommit(),
					len(g.PendingProposals()), mls.PastEpochs(g))
			}
			if r, ok := mls.RatchetOf(g, 0, true); !ok || len(r.Kept) != 2 {
				t.Fatalf("golden state: alice's application ratchet %v %v", ok, r.Kept)
			}
			if err := g.MergePendingCommit(); err != nil {
				t.Fatal(err)
			}
			if _, err := g.Encrypt([]byte("still works"), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStateGoldenPinsEveryRecord: the golden state's records are the ones
// Save writes, one of each kind, so the golden file pins all of them.
func TestStateGoldenPinsEveryRecord(t *testing.T) {
	g := goldenGroup(t)
	st := &recordingStore{Store: memory.New()}
	if err := g.Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	b := st.batches[0]
	if b.State == nil || len(b.Epochs) != 3 || len(b.MessageKeys) != 3 || b.PendingCommit == nil {
		t.Fatalf("first save: state %v, %d epochs, %d ratchet records, pending %v",
			b.State != nil, len(b.Epochs), len(b.MessageKeys), b.PendingCommit != nil)
	}
	blob, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range append([][]byte{b.State, b.PendingCommit}, epochData(b)...) {
		if !bytes.Contains(blob, rec) {
			t.Fatal("a saved record is not in the snapshot")
		}
	}
}

func epochData(b *storage.Batch) [][]byte {
	var out [][]byte
	for _, e := range b.Epochs {
		out = append(out, e.Data)
	}
	for _, k := range b.MessageKeys {
		out = append(out, k.Data)
	}
	return out
}

// Corrupt state never loads as something else and never panics: every
// proper prefix is refused, every single-byte change is refused or (if it
// hit a secret, which nothing can check) loads, a newer format version is
// refused as such.
func TestUnmarshalCorrupt(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "group-state-v1.golden"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, b []byte) error {
		t.Helper()
		var err error
		noPanic(t, what, func() { _, err = mls.UnmarshalGroup(&mls.Config{}, b) })
		if err != nil && !errors.Is(err, mls.ErrCorruptState) && !errors.Is(err, mls.ErrStateVersion) {
			t.Fatalf("%s: untyped error %v", what, err)
		}
		return err
	}
	for i := range len(data) {
		if err := check("prefix", data[:i]); err == nil {
			t.Fatalf("prefix of %d bytes loaded", i)
		}
	}
	// Every byte of the first 64 (envelopes, lengths, epoch numbers) and
	// then an evenly spread sample: a full decode per flip is too slow to
	// do for all of them under the race detector.
	accepted, tried := 0, 0
	step := func(i int) int {
		if i < 64 {
			return 1
		}
		return max(1, len(data)/200)
	}
	for i := 0; i < len(data); i += step(i) {
		b := bytes.Clone(data)
		b[i] ^= 0x41
		tried++
		if check("flipped byte", b) == nil {
			accepted++
		}
	}
	t.Logf("%d of %d single-byte changes loaded (they hit secret values, which nothing can check)", accepted, tried)
	newer := bytes.Clone(data)
	newer[3] = 2 // the snapshot envelope's version
	if err := check("version 2", newer); !errors.Is(err, mls.ErrStateVersion) {
		t.Fatalf("a newer version: %v", err)
	}
}

// FuzzUnmarshalGroup: no input panics or fails untyped, and whatever loads
// encodes back to the same bytes (the format has one encoding per state),
// or, for a state with a version 1 current epoch record, to the same bytes
// when written at version 1, and then to a fixed point.
func FuzzUnmarshalGroup(f *testing.F) {
	for _, v := range []string{"v1", "v2"} {
		if data, err := os.ReadFile(filepath.Join("testdata", "group-state-"+v+".golden")); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte{0x4d, 0x07, 0x00, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := mls.UnmarshalGroup(&mls.Config{}, data)
		if err != nil {
			if !errors.Is(err, mls.ErrCorruptState) && !errors.Is(err, mls.ErrStateVersion) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := g.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			var v1 []byte
			mls.WithCurrentFormat1(t, func() {
				if g1, err := mls.UnmarshalGroup(&mls.Config{}, data); err == nil {
					v1, _ = g1.MarshalBinary()
				}
			})
			if !bytes.Equal(v1, data) {
				t.Fatal("accepted state does not encode back to its input")
			}
			g2, err := mls.UnmarshalGroup(&mls.Config{}, again)
			if err != nil {
				t.Fatalf("a version 1 state rewritten at version 2 does not load: %v", err)
			}
			if again2, err := g2.MarshalBinary(); err != nil || !bytes.Equal(again2, again) {
				t.Fatalf("a version 1 state rewritten at version 2 is not a fixed point: %v", err)
			}
		}
	})
}

// recordingStore keeps every batch written through it.
type recordingStore struct {
	storage.Store
	batches []*storage.Batch
}

func (r *recordingStore) Write(ctx context.Context, b *storage.Batch) error {
	if err := r.Store.Write(ctx, b); err != nil {
		return err
	}
	// A copy: Save zeroes its batch once written.
	c := *b
	c.State, c.PendingCommit = bytes.Clone(b.State), bytes.Clone(b.PendingCommit)
	c.Epochs = slices.Clone(b.Epochs)
	for i := range c.Epochs {
		c.Epochs[i].Data = bytes.Clone(c.Epochs[i].Data)
	}
	c.MessageKeys = slices.Clone(b.MessageKeys)
	for i := range c.MessageKeys {
		c.MessageKeys[i].Data = bytes.Clone(c.MessageKeys[i].Data)
	}
	r.batches = append(r.batches, &c)
	return nil
}
