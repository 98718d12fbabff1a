package ratchettree

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// blankTree encodes a ratchet_tree of about size bytes: a leaf at node 0,
// blanks, and a leaf as the last node (the last node may not be blank,
// Section 12.4.3.3), so that it names a tree of ~size/2 leaves.
func blankTree(t testing.TB, size int) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	var enc [2][]byte
	for i := range enc {
		leaf := &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: testLeaf(randBytes(r, 32), randBytes(r, 32))}
		var err error
		if enc[i], err = codec.Marshal(leaf); err != nil {
			t.Fatal(err)
		}
	}
	leafEnc := enc[0]
	blanks := size - 2*(len(leafEnc)+1)
	if blanks%2 == 0 {
		blanks-- // nodes 1..blanks blank, then a leaf at an even index
	}
	body := append([]byte{1}, leafEnc...)
	body = append(body, make([]byte, blanks)...)
	body = append(append(body, 1), enc[1]...)
	b := codec.NewBuilder(nil)
	b.AddOpaque(body) // a vector is a varint length and the bytes
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decodeCost decodes and validates data against its own tree hash and
// reports the bytes allocated and the time.
func decodeCost(t *testing.T, data []byte) (alloc uint64, d time.Duration, err error) {
	s := testSuite(t)
	tr, err := Decode(s, data)
	if err != nil {
		t.Fatal(err)
	}
	treeHash := tr.TreeHash()
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	tr, err = Decode(s, data)
	if err == nil {
		err = tr.Validate(treeHash, &Policy{Credentials: acceptAll{}})
	}
	d = time.Since(start)
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc, d, err
}

// TestBlankTreeCost: issue 12, finding 7. A 1 MiB ratchet_tree of blank
// nodes names a 2^19-leaf tree; decoding and validating it must cost
// allocation proportional to the bytes received, not to the tree it names.
func TestBlankTreeCost(t *testing.T) {
	data := blankTree(t, 1<<20)
	alloc, d, err := decodeCost(t, data)
	t.Logf("1 MiB blank tree: %d bytes in, %d bytes allocated (%.1fx), %v, err=%v",
		len(data), alloc, float64(alloc)/float64(len(data)), d, err)
	// The test leaves are unsigned: validation gets past the tree hash,
	// unmerged leaves and parent hashes, and fails at the first signature.
	if !errors.Is(err, ErrInvalidLeafNode) && !errors.Is(err, ErrInvalidSignature) {
		t.Logf("(validation ended with %v)", err)
	}
	// Before: 577,163,280 bytes (550x). The decoder keeps the input (1x)
	// and the store a pointer per 4,096 nodes, plus the directories of the
	// chunks that hold nodes.
	if alloc > 4*uint64(len(data)) {
		t.Fatalf("decoding a %d-byte tree allocated %d bytes", len(data), alloc)
	}
	// Encoding it again (every GroupInfo a member of such a group sends)
	// costs the output, not a pointer per node.
	tr, err := Decode(testSuite(t), data)
	if err != nil {
		t.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	out, err := tr.Encode()
	runtime.ReadMemStats(&m1)
	if err != nil || len(out) != len(data) {
		t.Fatal("encode")
	}
	if enc := m1.TotalAlloc - m0.TotalAlloc; enc > 3*uint64(len(data)) {
		t.Fatalf("encoding a %d-byte tree allocated %d bytes", len(data), enc)
	}
}

// naiveTreeHash is the tree hash straight from RFC 9420, Section 7.8, over
// the node list, with no caches and no shortcut for blank subtrees.
func naiveTreeHash(t *testing.T, tr *Tree, x NodeIndex) []byte {
	var in wire.TreeHashInput
	n := tr.Node(x)
	if x.IsLeaf() {
		in = wire.TreeHashInput{NodeType: wire.NodeTypeLeaf, LeafNode: &wire.LeafNodeHashInput{LeafIndex: uint32(x.Leaf())}}
		if n != nil {
			in.LeafNode.LeafNode = n.LeafNode
		}
	} else {
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		in = wire.TreeHashInput{NodeType: wire.NodeTypeParent, ParentNode: &wire.ParentNodeHashInput{
			LeftHash: naiveTreeHash(t, tr, l), RightHash: naiveTreeHash(t, tr, r)}}
		if n != nil {
			in.ParentNode.ParentNode = n.ParentNode
		}
	}
	enc, err := codec.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Suite().Hash(enc)
}

// TestBlankSubtreeHash: the shortcut for all-blank subtrees (unallocated
// chunks, blankHash) gives the tree hash of the definition, for sizes that
// span one chunk and many, before and after the tree changes.
func TestBlankSubtreeHash(t *testing.T) {
	for _, size := range []int{300, 700, 5000, 40000} {
		data := blankTree(t, size)
		tr, err := Decode(testSuite(t), data)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := tr.TreeHash(), naiveTreeHash(t, tr, tr.Root()); string(got) != string(want) {
			t.Fatalf("%d bytes: tree hash differs from the definition", size)
		}
		c := tr.Clone()
		r := rand.New(rand.NewPCG(uint64(size), 1))
		for range 3 {
			if _, err := c.AddLeaf(testLeaf(randBytes(r, 32), randBytes(r, 32))); err != nil {
				t.Fatal(err)
			}
		}
		// Remove the rightmost member: the tree truncates.
		var last LeafIndex
		c.Members(func(l LeafIndex, _ *wire.LeafNode) bool { last = l; return true })
		if err := c.RemoveLeaf(last); err != nil {
			t.Fatal(err)
		}
		if got, want := c.TreeHash(), naiveTreeHash(t, c, c.Root()); string(got) != string(want) {
			t.Fatalf("%d bytes, changed: tree hash differs from the definition", size)
		}
		if got, want := tr.TreeHash(), naiveTreeHash(t, tr, tr.Root()); string(got) != string(want) {
			t.Fatalf("%d bytes: the original changed with its clone", size)
		}
		back, err := tr.Encode()
		if err != nil || string(back) != string(data) {
			t.Fatalf("%d bytes: encode(decode(b)) != b", size)
		}
		if cap(back) > len(back)+3 { // the length's 4 reserved octets, less those used
			t.Fatalf("%d bytes: Encode sized its buffer %d, not exactly", size, cap(back))
		}
	}
}
