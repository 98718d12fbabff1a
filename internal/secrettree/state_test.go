package secrettree

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/treemath"
)

// canonical renders everything a tree holds, secrets included, ignoring
// empty window slots (a restored ratchet allocates its window only when it
// keeps a key), so two renderings are equal exactly when the trees behave
// the same from now on.
func canonical(t *Tree) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "leaves %d tolerance %d forward %d erased %v\n", t.leaves, t.tolerance, t.forward, t.erased)
	xs := make([]treemath.NodeIndex, 0, len(t.nodes))
	for x := range t.nodes {
		xs = append(xs, x)
	}
	slices.Sort(xs)
	for _, x := range xs {
		fmt.Fprintf(&b, "node %d %x\n", x, []byte(t.nodes[x]))
	}
	for _, l := range t.Initialised() {
		lr := t.ratchets[l]
		for _, r := range []*ratchet{&lr.handshake, &lr.application} {
			fmt.Fprintf(&b, "leaf %d next %d %x\n", l, r.next, []byte(r.secret))
			var kept []entry
			for _, e := range r.window {
				if e.key != nil {
					kept = append(kept, e)
				}
			}
			slices.SortFunc(kept, func(a, b entry) int { return int(int64(a.gen) - int64(b.gen)) })
			for _, e := range kept {
				fmt.Fprintf(&b, "  %d %x %x\n", e.gen, []byte(e.key), []byte(e.nonce))
			}
		}
	}
	return b.String()
}

// save splits t's state as a caller would: the skeleton, and the leaf
// states grouped into blobs of up to per leaves.
func save(t testing.TB, tr *Tree, per int) (skeleton []byte, blobs [][]byte) {
	t.Helper()
	b := codec.NewBuilder(nil)
	tr.MarshalSkeleton(b)
	skeleton, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	leaves := tr.Initialised()
	for len(leaves) > 0 {
		n := min(per, len(leaves))
		b := codec.NewBuilder(nil)
		for _, l := range leaves[:n] {
			if err := tr.MarshalLeaf(b, l); err != nil {
				t.Fatal(err)
			}
		}
		blob, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, blob)
		leaves = leaves[n:]
	}
	return skeleton, blobs
}

// randomOp drives the tree as a group would: a send on one leaf, or a
// receive of some generation (ahead, in the window, replayed or too old).
// It returns a rendering of the outcome, for comparing two trees.
func randomOp(tr *Tree, rng *rand.Rand) string {
	l := treemath.LeafIndex(rng.IntN(int(tr.leaves)))
	kind := Kind(1 + rng.IntN(2))
	if rng.IntN(4) == 0 {
		g, k, n, err := tr.Next(l, kind)
		return fmt.Sprintf("next %d %v: %d %x %x %v", l, kind, g, []byte(k), []byte(n), err)
	}
	next := tr.NextGeneration(l, kind)
	g := uint32(max(0, int64(next)+int64(rng.IntN(14))-8))
	k, n, err := tr.Get(l, kind, g)
	return fmt.Sprintf("get %d %v %d: %x %x %v", l, kind, g, []byte(k), []byte(n), err)
}

// A restored tree is the tree that was saved: same secrets, same window,
// and from then on it answers every request exactly as the original does.
func TestSaveRestoreRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		leaves uint32
		cfg    Config
		ops    int
	}{
		{1, Config{}, 0},
		{1, Config{}, 20},
		{8, Config{}, 60},
		{64, Config{OutOfOrderTolerance: 3, MaxForwardDistance: 20}, 300},
		{256, Config{OutOfOrderTolerance: -1}, 200},
		{1024, Config{}, 150},
	} {
		t.Run(fmt.Sprintf("%d leaves %d ops", tc.leaves, tc.ops), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.leaves), uint64(tc.ops)))
			tr := newTree(t, tc.leaves, tc.cfg)
			for range tc.ops {
				randomOp(tr, rng)
			}
			for _, per := range []int{1, 3, 1000} {
				skel, blobs := save(t, tr, per)
				got, err := Restore(testSuite(t), skel, blobs...)
				if err != nil {
					t.Fatalf("restore: %v", err)
				}
				if a, b := canonical(tr), canonical(got); a != b {
					t.Fatalf("restored tree differs:\n%s\nwant\n%s", b, a)
				}
			}
			skel, blobs := save(t, tr, 7)
			got, err := Restore(testSuite(t), skel, blobs...)
			if err != nil {
				t.Fatal(err)
			}
			r1 := rand.New(rand.NewPCG(9, 9))
			r2 := rand.New(rand.NewPCG(9, 9))
			for i := range 100 {
				if a, b := randomOp(tr, r1), randomOp(got, r2); a != b {
					t.Fatalf("op %d: original %s, restored %s", i, a, b)
				}
			}
		})
	}
}

// An erased tree saves and restores as erased.
func TestSaveRestoreErased(t *testing.T) {
	tr := newTree(t, 4, Config{})
	tr.Next(1, Application)
	tr.Erase()
	skel, blobs := save(t, tr, 4)
	got, err := Restore(testSuite(t), skel, blobs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := got.Next(0, Application); !errors.Is(err, ErrErased) {
		t.Fatalf("restored erased tree: Next gave %v", err)
	}
}

// The summary changes exactly when a leaf's state does, and holds no
// secret.
func TestLeafSummary(t *testing.T) {
	tr := newTree(t, 8, Config{})
	if s := tr.AppendLeafSummary(nil, 3); len(s) != 0 {
		t.Fatalf("summary of an uninitialised leaf: %x", s)
	}
	tr.Get(3, Application, 4) // keeps 0..3
	s1 := tr.AppendLeafSummary(nil, 3)
	if _, _, err := tr.Peek(3, Application, 2); err != nil {
		t.Fatal(err)
	}
	if s := tr.AppendLeafSummary(nil, 3); !bytes.Equal(s, s1) {
		t.Fatal("Peek changed the summary")
	}
	tr.Get(3, Application, 2) // consumes a kept key
	s2 := tr.AppendLeafSummary(nil, 3)
	if bytes.Equal(s1, s2) {
		t.Fatal("consuming a kept key left the summary unchanged")
	}
	tr.Next(3, Handshake)
	if s3 := tr.AppendLeafSummary(nil, 3); bytes.Equal(s2, s3) {
		t.Fatal("sending left the summary unchanged")
	}
	lr := tr.ratchets[3]
	for _, secret := range [][]byte{lr.application.secret, lr.handshake.secret} {
		if bytes.Contains(tr.AppendLeafSummary(nil, 3), secret[:8]) {
			t.Fatal("summary holds a secret")
		}
	}
}

// Every proper prefix of a saved state, and the state with a byte
// appended, is refused.
func TestRestoreTruncated(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := newTree(t, 16, Config{})
	for range 40 {
		randomOp(tr, rng)
	}
	skel, blobs := save(t, tr, 100)
	if len(blobs) != 1 {
		t.Fatalf("%d blobs", len(blobs))
	}
	s := testSuite(t)
	for i := range len(skel) {
		if _, err := Restore(s, skel[:i], blobs...); !errors.Is(err, ErrCorruptState) {
			t.Fatalf("skeleton prefix %d: %v", i, err)
		}
	}
	if _, err := Restore(s, append(slices.Clone(skel), 0), blobs...); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("skeleton with a trailing byte: %v", err)
	}
	for i := range len(blobs[0]) {
		if _, err := Restore(s, skel, blobs[0][:i]); !errors.Is(err, ErrCorruptState) {
			t.Fatalf("leaf blob prefix %d: %v", i, err)
		}
	}
	if _, err := Restore(s, skel, blobs[0], blobs[0]); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("leaf states given twice: %v", err)
	}
}

// States a tree can never be in are refused, each for its own reason.
func TestRestoreRefusesImpossibleStates(t *testing.T) {
	s := testSuite(t)
	hs := s.HashSize()
	sec := bytes.Repeat([]byte{7}, hs)
	skeleton := func(leaves, tol uint32, erased bool, nodes []uint32, inits []uint32) []byte {
		b := codec.NewBuilder(nil)
		b.AddUint32(leaves)
		b.AddUint32(tol)
		b.AddUint32(1000)
		b.AddBool(erased)
		b.AddVector(func(b *codec.Builder) {
			for _, x := range nodes {
				b.AddUint32(x)
				b.AddOpaque(sec)
			}
		})
		b.AddVector(func(b *codec.Builder) {
			for _, l := range inits {
				b.AddUint32(l)
			}
		})
		out, _ := b.Bytes()
		return out
	}
	leaf := func(l uint32, next uint64, kept ...uint32) []byte {
		b := codec.NewBuilder(nil)
		b.AddUint32(l)
		for range 2 {
			b.AddUint64(next)
			b.AddOptional(true)
			b.AddOpaque(sec)
			b.AddVector(func(b *codec.Builder) {
				for _, g := range kept {
					b.AddUint32(g)
					b.AddOpaque(make([]byte, s.KeySize()))
					b.AddOpaque(make([]byte, s.NonceSize()))
				}
			})
		}
		out, _ := b.Bytes()
		return out
	}
	// Four leaves: nodes 0..6, root 3; leaf l is node 2l.
	for _, tc := range []struct {
		name  string
		skel  []byte
		blobs [][]byte
		ok    bool
	}{
		{"fresh", skeleton(4, 5, false, []uint32{3}, nil), nil, true},
		{"split", skeleton(4, 5, false, []uint32{2, 5}, []uint32{0}), [][]byte{leaf(0, 3, 1)}, true},
		{"leaf count not a power of two", skeleton(3, 5, false, []uint32{3}, nil), nil, false},
		{"zero leaves", skeleton(0, 5, false, nil, nil), nil, false},
		{"empty frontier", skeleton(4, 5, false, nil, nil), nil, false},
		{"overlapping frontier", skeleton(4, 5, false, []uint32{1, 2, 3}, nil), nil, false},
		{"node outside the tree", skeleton(4, 5, false, []uint32{3, 7}, nil), nil, false},
		{"uncovered leaf", skeleton(4, 5, false, []uint32{1, 4}, nil), nil, false},
		{"initialised leaf below the frontier", skeleton(4, 5, false, []uint32{3}, []uint32{0}), [][]byte{leaf(0, 0)}, false},
		{"initialised leaf without state", skeleton(4, 5, false, []uint32{2, 5}, []uint32{0}), nil, false},
		{"state for an uninitialised leaf", skeleton(4, 5, false, []uint32{3}, nil), [][]byte{leaf(0, 0)}, false},
		{"kept key at the ratchet", skeleton(4, 5, false, []uint32{2, 5}, []uint32{0}), [][]byte{leaf(0, 3, 2)}, false},
		{"kept key too old", skeleton(4, 5, false, []uint32{2, 5}, []uint32{0}), [][]byte{leaf(0, 10, 3)}, false},
		{"kept key with no window", skeleton(4, 0, false, []uint32{2, 5}, []uint32{0}), [][]byte{leaf(0, 3, 1)}, false},
		{"generation beyond 2^32", skeleton(4, 5, false, []uint32{2, 5}, []uint32{0}), [][]byte{leaf(0, 1<<32+1)}, false},
		{"exhausted ratchet with a secret", skeleton(4, 5, false, []uint32{2, 5}, []uint32{0}), [][]byte{leaf(0, 1<<32)}, false},
		{"erased tree with secrets", skeleton(4, 5, true, []uint32{3}, nil), nil, false},
		{"erased", skeleton(4, 5, true, nil, nil), nil, true},
	} {
		_, err := Restore(s, tc.skel, tc.blobs...)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrCorruptState)) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
}

// FuzzRestore: no input makes Restore panic or fail with anything but
// ErrCorruptState, and whatever it accepts saves back to the same bytes.
func FuzzRestore(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	tr := newTree(f, 8, Config{OutOfOrderTolerance: 3})
	for i := range 30 {
		randomOp(tr, rng)
		if i%10 == 0 {
			skel, blobs := save(f, tr, 100)
			f.Add(skel, slices.Concat(blobs...))
		}
	}
	s := testSuite(f)
	f.Fuzz(func(t *testing.T, skel, leaves []byte) {
		got, err := Restore(s, skel, leaves)
		if err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("error %v does not wrap ErrCorruptState", err)
			}
			return
		}
		skel2, blobs := save(t, got, 1<<30)
		if !bytes.Equal(skel2, skel) {
			t.Fatalf("skeleton does not round-trip")
		}
		// Leaf states may have been given in any order; compare as sets
		// of the canonical re-encoding.
		if got2, err := Restore(s, skel2, blobs...); err != nil || canonical(got2) != canonical(got) {
			t.Fatalf("re-saved state does not restore to the same tree: %v", err)
		}
	})
}
