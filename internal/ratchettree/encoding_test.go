package ratchettree

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// checkEncoding fails unless t's Encode is codec.Marshal of its node list,
// the definition the chunk cache must keep to.
func checkEncoding(t *testing.T, tr *Tree, what string) []byte {
	t.Helper()
	got, err := tr.Encode()
	if err != nil {
		t.Fatalf("%s: Encode: %v", what, err)
	}
	nodes := tr.Nodes()
	want, err := codec.Marshal(&nodes)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: Encode differs from the node list's encoding (%d vs %d bytes)", what, len(got), len(want))
	}
	return got
}

// decodedFullTree is a full tree of n leaves as a member holds it after
// decoding: its leaves keep the bytes they were received as. It returns
// the encoding it was decoded from.
func decodedFullTree(t *testing.T, n uint32) (*Tree, []byte) {
	t.Helper()
	s := testSuite(t)
	built, _, _ := fullTree(t, s, n, 0, 1)
	enc, err := built.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Decode(s, enc)
	if err != nil {
		t.Fatal(err)
	}
	return tr, enc
}

// TestEncodingKeptPerChunk: a chunk's encoding is kept from its second
// use, and a change encodes again only the chunks it wrote. A clone shares
// its unchanged chunks, caches included, with the tree it came from;
// neither tree's writes may show in the other's encoding.
func TestEncodingKeptPerChunk(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 3))
	// Leaves as received (decoded: copied from their bytes) and, added
	// below, leaves made here (no received bytes: marshaled).
	base, _ := decodedFullTree(t, 512)
	// The first encoding of a chunk keeps nothing, the second keeps it,
	// and from then on only the last, partial chunk is walked.
	walked := func(tr *Tree, what string) int64 {
		t.Helper()
		n0 := nodesEncoded.Load()
		checkEncoding(t, tr, what)
		return nodesEncoded.Load() - n0
	}
	baseEnc := checkEncoding(t, base, "decoded")
	if n := walked(base, "second"); n < int64(base.Width())-chunkSize {
		t.Fatalf("the second encoding walked %d nodes of %d", n, base.Width())
	}
	if n := walked(base, "third"); n >= chunkSize {
		t.Fatalf("an unchanged tree encoded a third time walked %d nodes", n)
	}

	// One leaf updated: its leaf and its direct path are written, so only
	// their chunks are walked again (and the last, partial one).
	c := base.Clone()
	l := LeafIndex(r.IntN(512))
	if err := c.UpdateLeaf(l, testLeaf(randBytes(r, 32), randBytes(r, 32))); err != nil {
		t.Fatal(err)
	}
	touched := map[NodeIndex]bool{l.Node() >> chunkBits: true}
	for x, ok := treemath.Parent(l.Node(), c.LeafCount()); ok; x, ok = treemath.Parent(x, c.LeafCount()) {
		touched[x>>chunkBits] = true
	}
	most := int64(len(touched)+1) * chunkSize
	for _, what := range []string{"after an update", "again after an update"} {
		if n := walked(c, what); n == 0 || n > most {
			t.Fatalf("%s: walked %d nodes, want 1 to %d (of %d)", what, n, most, c.Width())
		}
	}
	if n := walked(c, "a third time after an update"); n >= chunkSize {
		t.Fatalf("the updated tree encoded a third time walked %d nodes", n)
	}
	if !bytes.Equal(checkEncoding(t, base, "base after the clone's update"), baseEnc) {
		t.Fatal("the clone's update changed the base's encoding")
	}

	// Random changes on clones of clones, each encoding checked after
	// every step, and every earlier tree's encoding unchanged.
	trees := []*Tree{base}
	encs := [][]byte{baseEnc}
	for step := range 200 {
		tr := trees[r.IntN(len(trees))].Clone()
		switch op := r.IntN(3); {
		case op == 0 || tr.MemberCount() < 4:
			if _, err := tr.AddLeaf(testLeaf(randBytes(r, 32), randBytes(r, 32))); err != nil {
				t.Fatal(err)
			}
		default:
			var ls []LeafIndex
			tr.Members(func(l LeafIndex, _ *wire.LeafNode) bool { ls = append(ls, l); return true })
			l := ls[r.IntN(len(ls))]
			var err error
			if op == 1 {
				err = tr.RemoveLeaf(l)
			} else {
				err = tr.UpdateLeaf(l, testLeaf(randBytes(r, 32), randBytes(r, 32)))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		for range 1 + r.IntN(3) { // encoded directly, then from the kept chunks
			checkEncoding(t, tr, "random step")
		}
		trees, encs = append(trees, tr), append(encs, checkEncoding(t, tr, "random step"))
		if step%20 == 19 {
			for i, old := range trees {
				if !bytes.Equal(checkEncoding(t, old, "earlier tree"), encs[i]) {
					t.Fatalf("step %d: tree %d's encoding changed", step, i)
				}
			}
		}
	}
}

// TestEncodingSharedChunksConcurrently: trees sharing chunks fill their
// caches at once (run with -race).
func TestEncodingSharedChunksConcurrently(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 4))
	base, enc := decodedFullTree(t, 256)
	clones := make([]*Tree, 4)
	for i := range clones {
		clones[i] = base.Clone()
		if err := clones[i].UpdateLeaf(LeafIndex(r.IntN(256)), testLeaf(randBytes(r, 32), randBytes(r, 32))); err != nil {
			t.Fatal(err)
		}
	}
	base.Encode() // the first time: the next ones keep what they encode
	var wg sync.WaitGroup
	got := make([][]byte, len(clones))
	for i, c := range clones {
		wg.Go(func() { got[i], _ = c.Encode() })
	}
	wg.Wait()
	for i, c := range clones {
		nodes := c.Nodes()
		if want, _ := codec.Marshal(&nodes); !bytes.Equal(got[i], want) {
			t.Fatalf("clone %d: concurrent Encode differs from its node list's encoding", i)
		}
	}
	if again, _ := base.Encode(); !bytes.Equal(again, enc) {
		t.Fatal("base's encoding changed")
	}
}
