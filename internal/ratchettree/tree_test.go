package ratchettree

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// naiveResolution computes a resolution straight from the definition
// (RFC 9420, Section 4.1.1) over the node list, with no caches.
func naiveResolution(nodes wire.RatchetTree, n uint32, x NodeIndex) []NodeIndex {
	var nd *wire.Node
	if int(x) < len(nodes) {
		nd = nodes[x]
	}
	if nd != nil {
		out := []NodeIndex{x}
		if nd.ParentNode != nil {
			for _, u := range nd.ParentNode.UnmergedLeaves {
				out = append(out, LeafIndex(u).Node())
			}
		}
		return out
	}
	if x.IsLeaf() {
		return nil
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	return append(naiveResolution(nodes, n, l), naiveResolution(nodes, n, r)...)
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// checkAgainstFresh compares t's incrementally maintained state with a tree
// decoded from t's encoding and with naive computations.
func checkAgainstFresh(t *testing.T, tr *Tree, r *rand.Rand) {
	t.Helper()
	enc, err := tr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Decode(tr.suite, enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tr.TreeHash(), fresh.TreeHash()) {
		t.Fatal("cached tree hash differs from a fresh computation")
	}
	if tr.LeafCount() != fresh.LeafCount() {
		t.Fatalf("leaf count %d, fresh %d (not truncated?)", tr.LeafCount(), fresh.LeafCount())
	}
	nodes := tr.Nodes()
	members, nonBlank := 0, 0
	freeLeaf := LeafIndex(tr.n)
	for x := NodeIndex(0); uint32(x) < tr.Width(); x++ {
		nd := tr.Node(x)
		if nd != nil {
			nonBlank++
			if y, ok := tr.FindEncryptionKey(encryptionKey(nd)); !ok || y != x {
				t.Fatalf("encryption key index: node %d -> %d, %v", x, y, ok)
			}
			if x.IsLeaf() {
				members++
				if l, ok := tr.FindSignatureKey(nd.LeafNode.SignatureKey); !ok || l != x.Leaf() {
					t.Fatalf("signature key index: leaf %d -> %d, %v", x.Leaf(), l, ok)
				}
			}
		} else if x.IsLeaf() && freeLeaf == LeafIndex(tr.n) {
			freeLeaf = x.Leaf()
		}
		want := naiveResolution(nodes, tr.n, x)
		if got := tr.Resolution(x); !slices.Equal(got, want) {
			t.Fatalf("resolution(%d) = %v, want %v", x, got, want)
		}
		if !bytes.Equal(tr.NodeHash(x), fresh.NodeHash(x)) {
			t.Fatalf("node hash %d differs from fresh", x)
		}
		// The receiver's ciphertext index: every member below x, with a
		// random set of the leaves listed in the resolution excluded
		// (joiners), must find its entry where a full scan does.
		if x.IsLeaf() {
			continue
		}
		var listed []uint32
		for _, y := range want {
			if y.IsLeaf() {
				listed = append(listed, uint32(y.Leaf()))
			}
		}
		for _, rl := range listed {
			var ex []uint32
			for _, u := range listed {
				if u != rl && r.IntN(2) == 0 {
					ex = append(ex, u)
				}
			}
			slices.Sort(ex)
			pos, holder, ok := tr.resolutionPosition(x, LeafIndex(rl), ex)
			res := tr.resolve(x, ex, nil)
			if !ok || pos >= len(res) || res[pos] != holder || holder != LeafIndex(rl).Node() {
				t.Fatalf("resolutionPosition(%d, leaf %d, %v) = %d, %d, %v; resolution %v", x, rl, ex, pos, holder, ok, res)
			}
		}
	}
	if uint32(members) != tr.MemberCount() || tr.sig.len() != members || tr.enc.len() != nonBlank {
		t.Fatalf("counts: members %d/%d, sig index %d, enc index %d/%d", members, tr.MemberCount(), tr.sig.len(), tr.enc.len(), nonBlank)
	}
	if tr.FreeLeaf() != freeLeaf {
		t.Fatalf("FreeLeaf %d, want %d", tr.FreeLeaf(), freeLeaf)
	}
}

// TestRandomOperations drives trees through random Adds, Updates, Removes
// and path merges, checking every cache, index and older clone after each.
func TestRandomOperations(t *testing.T) {
	s := testSuite(t)
	for seed := range uint64(6) {
		r := rand.New(rand.NewPCG(seed, 42))
		tr := New(s, testLeaf(randBytes(r, 32), randBytes(r, 32)))
		type snapshot struct {
			tree *Tree
			enc  []byte
			hash []byte
		}
		var snaps []snapshot
		for step := range 120 {
			switch op := r.IntN(10); {
			case op < 4 || tr.MemberCount() < 2:
				if _, err := tr.AddLeaf(testLeaf(randBytes(r, 32), randBytes(r, 32))); err != nil {
					t.Fatal(err)
				}
			case op < 6:
				l := randomMember(tr, r)
				if err := tr.RemoveLeaf(l); err != nil {
					t.Fatal(err)
				}
			case op < 7:
				l := randomMember(tr, r)
				if err := tr.UpdateLeaf(l, testLeaf(randBytes(r, 32), tr.Leaf(l).SignatureKey)); err != nil {
					t.Fatal(err)
				}
			default:
				mergeRandomPath(tr, randomMember(tr, r), r)
			}
			checkAgainstFresh(t, tr, r)
			if step%10 == 0 {
				c := tr.Clone()
				enc, _ := c.Encode()
				snaps = append(snaps, snapshot{c, enc, slices.Clone(c.TreeHash())})
				if r.IntN(2) == 0 {
					tr = c // carry on with the clone; the original is a snapshot now
					c = tr.Clone()
					snaps[len(snaps)-1].tree = c
				}
			}
		}
		for i, sn := range snaps {
			enc, _ := sn.tree.Encode()
			if !bytes.Equal(enc, sn.enc) || !bytes.Equal(sn.tree.TreeHash(), sn.hash) {
				t.Fatalf("seed %d: snapshot %d changed after its clone was modified", seed, i)
			}
		}
	}
}

// TestCloneAcrossDirectories: in a tree wider than one chunk directory
// (4,096 nodes), a clone's paths, updates and removals through several
// directories leave the original as it was, and both trees agree with a
// fresh decoding of themselves.
func TestCloneAcrossDirectories(t *testing.T) {
	s := testSuite(t)
	r := rand.New(rand.NewPCG(7, 7))
	tr, _, _ := fullTree(t, s, 1<<13, 0, 1) // 16,383 nodes: four directories
	enc0, err := tr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	hash0 := slices.Clone(tr.TreeHash())
	c := tr.Clone()
	for _, l := range []LeafIndex{0, 2100, 4500, 8191} {
		mergeRandomPath(c, l, r)
	}
	if err := c.UpdateLeaf(6000, testLeaf(randBytes(r, 32), c.Leaf(6000).SignatureKey)); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveLeaf(8190); err != nil {
		t.Fatal(err)
	}
	checkAgainstFresh(t, c, r)
	enc, err := tr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, enc0) || !bytes.Equal(tr.TreeHash(), hash0) {
		t.Fatal("the original changed when its clone was written")
	}
	checkAgainstFresh(t, tr, r)
	if bytes.Equal(c.TreeHash(), hash0) {
		t.Fatal("the clone's writes did not change its tree hash")
	}
}

// mergeRandomPath merges a committer's path of random keys (unchecked) for
// leaf l, with its new leaf.
func mergeRandomPath(tr *Tree, l LeafIndex, r *rand.Rand) {
	steps := tr.filteredPath(l)
	pubs := make([][]byte, len(steps))
	for i := range pubs {
		pubs[i] = randBytes(r, 32)
	}
	ph := tr.mergePath(l, steps, pubs)
	leaf := *testLeaf(randBytes(r, 32), tr.Leaf(l).SignatureKey)
	leaf.LeafNodeSource, leaf.ParentHash = wire.LeafNodeSourceCommit, ph
	tr.write(l.Node(), &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: &leaf})
}

func randomMember(tr *Tree, r *rand.Rand) LeafIndex {
	var ms []LeafIndex
	tr.Members(func(l LeafIndex, _ *wire.LeafNode) bool { ms = append(ms, l); return true })
	return ms[r.IntN(len(ms))]
}

// TestTruncateAndExtend: removing the rightmost members halves the tree and
// adding again reuses the blank half (RFC 9420, Section 7.7).
func TestTruncateAndExtend(t *testing.T) {
	s := testSuite(t)
	r := rand.New(rand.NewPCG(1, 2))
	tr := New(s, testLeaf(randBytes(r, 32), randBytes(r, 32)))
	for range 4 {
		tr.AddLeaf(testLeaf(randBytes(r, 32), randBytes(r, 32)))
	}
	if tr.LeafCount() != 8 {
		t.Fatalf("5 members in %d leaves", tr.LeafCount())
	}
	if err := tr.RemoveLeaf(4); err != nil {
		t.Fatal(err)
	}
	if tr.LeafCount() != 4 || tr.Width() != 7 {
		t.Fatalf("after removing leaf 4: %d leaves", tr.LeafCount())
	}
	if err := tr.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	if tr.LeafCount() != 4 || tr.FreeLeaf() != 1 {
		t.Fatalf("internal blank: %d leaves, free leaf %d", tr.LeafCount(), tr.FreeLeaf())
	}
	if err := tr.RemoveLeaf(3); err != nil {
		t.Fatal(err)
	}
	if tr.LeafCount() != 4 { // leaf 2 still in the right half
		t.Fatalf("%d leaves", tr.LeafCount())
	}
	tr.RemoveLeaf(2)
	if tr.LeafCount() != 1 {
		t.Fatalf("only leaf 0 left in %d leaves", tr.LeafCount())
	}
	if err := tr.RemoveLeaf(2); err == nil {
		t.Fatal("removed a leaf outside the tree")
	}
	checkAgainstFresh(t, tr, r)
}

func TestDecodeStructure(t *testing.T) {
	s := testSuite(t)
	r := rand.New(rand.NewPCG(3, 4))
	leaf := &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: testLeaf(randBytes(r, 32), randBytes(r, 32))}
	parent := &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &wire.ParentNode{EncryptionKey: randBytes(r, 32)}}
	for name, nodes := range map[string]wire.RatchetTree{
		"empty":          {},
		"trailing blank": {leaf, nil, nil},
		"parent at leaf": {parent},
		"leaf at parent": {leaf, leaf, leaf},
	} {
		enc, err := codec.Marshal(&nodes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(s, enc); !errors.Is(err, ErrInvalidTree) {
			t.Errorf("%s: got %v, want ErrInvalidTree", name, err)
		}
	}
	// Structurally fine, but the parent cannot be parent-hash valid.
	nodes := wire.RatchetTree{leaf, parent}
	enc, _ := codec.Marshal(&nodes)
	tr, err := Decode(s, enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.VerifyParentHashes(); !errors.Is(err, ErrInvalidParentHash) {
		t.Fatalf("lone parent: got %v", err)
	}
	// A single leaf, and a padded tree, decode.
	for _, nodes := range []wire.RatchetTree{{leaf}, {leaf, nil, nil, nil, leaf}} {
		enc, _ := codec.Marshal(&nodes)
		tr, err := Decode(s, enc)
		if err != nil {
			t.Fatal(err)
		}
		back, _ := tr.Encode()
		if !bytes.Equal(back, enc) {
			t.Fatal("encode(decode(b)) != b")
		}
	}
}
