package wire

import (
	"bytes"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

// TestSparseRatchetTree: the sparse decoding of ratchet_tree reads exactly
// what RatchetTree reads (same nodes, same blanks, same errors on every
// proper prefix) and encodes back to the same bytes.
func TestSparseRatchetTree(t *testing.T) {
	leaf := &Node{NodeType: NodeTypeLeaf, LeafNode: ptr(sampleLeaf(LeafNodeSourceKeyPackage))}
	parent := &Node{NodeType: NodeTypeParent, ParentNode: ptr(sampleParentNode())}
	for _, rt := range []RatchetTree{{leaf}, {leaf, nil, nil, nil, leaf}, {leaf, parent, leaf, nil, nil}, {nil}, {}} {
		enc := mustMarshal(t, &rt)
		var sp SparseRatchetTree
		if err := decodeAll(&sp, enc, sp.decode); err != nil {
			t.Fatal(err)
		}
		if int(sp.Width) != len(rt) {
			t.Fatalf("width %d, want %d", sp.Width, len(rt))
		}
		j := 0
		for i, n := range rt {
			if n == nil {
				continue
			}
			if j >= len(sp.Nodes) || sp.Nodes[j].Index != uint32(i) {
				t.Fatalf("node %d missing", i)
			}
			j++
		}
		if j != len(sp.Nodes) {
			t.Fatal("extra nodes")
		}
		if back := mustMarshal(t, &sp); !bytes.Equal(back, enc) {
			t.Fatal("encode(decode(b)) != b")
		}
		for n := range len(enc) {
			var d SparseRatchetTree
			if err := decodeAll(&d, enc[:n], d.decode); err == nil {
				t.Fatalf("prefix %d of %d decoded", n, len(enc))
			}
		}
	}
	var x SparseRatchetTree
	if _, err := codec.Marshal(&x); err != nil {
		t.Fatal(err)
	}
}
