package ratchettree

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/wire"
)

// TestTreeKeepsNoReceivedMessage: the nodes a tree stores from a received
// Add, Update or UpdatePath are copies, not views into the message they
// were decoded from, which would otherwise stay allocated for as long as
// the node stands (a commit to a sparse 1,000-member tree is 80 KB). Each
// is decoded where it lies in a buffer of the test's, stored, and the
// buffer overwritten: every node of the tree must read as before.
func TestTreeKeepsNoReceivedMessage(t *testing.T) {
	g := newGroup(t)
	g.commit(0, nil, 5)
	// snapshot encodes every node of tr.
	snapshot := func(tr *Tree) []byte {
		var out []byte
		for x := range tr.Width() {
			if n := tr.Node(NodeIndex(x)); n != nil {
				b, err := codec.Marshal(n)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b...)
			}
		}
		return out
	}
	inPlace := func(v codec.Marshaler) []byte {
		b, err := codec.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// check overwrites buf and requires tr's nodes to read as before, and
	// its key index (which keeps the nodes' own bytes as keys) to find
	// each of keys, copied before, where it was.
	check := func(what string, tr *Tree, buf []byte, keys ...[]byte) {
		t.Helper()
		before := snapshot(tr)
		at := make([]NodeIndex, len(keys))
		for i, k := range keys {
			k = bytes.Clone(k)
			keys[i] = k
			var ok bool
			if at[i], ok = tr.FindEncryptionKey(k); !ok {
				t.Fatalf("%s: key %d not in the index", what, i)
			}
		}
		for i := range buf {
			buf[i] = 0xA5
		}
		if !bytes.Equal(before, snapshot(tr)) {
			t.Fatalf("%s: the tree changed when the message it came in was overwritten", what)
		}
		for i, k := range keys {
			if x, ok := tr.FindEncryptionKey(k); !ok || x != at[i] {
				t.Fatalf("%s: key %d no longer found in the index when the message was overwritten", what, i)
			}
		}
	}

	buf := inPlace(newMember(t, g.s).leaf)
	leaf, err := wire.DecodeInPlace[wire.LeafNode](buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := g.tree.Clone()
	if _, err := tr.AddLeaf(leaf); err != nil {
		t.Fatal(err)
	}
	check("Add", tr, buf, leaf.EncryptionKey)

	buf = inPlace(newMember(t, g.s).leaf)
	if leaf, err = wire.DecodeInPlace[wire.LeafNode](buf); err != nil {
		t.Fatal(err)
	}
	tr = g.tree.Clone()
	if err := tr.UpdateLeaf(3, leaf); err != nil {
		t.Fatal(err)
	}
	check("Update", tr, buf, leaf.EncryptionKey)

	created, err := g.tree.Clone().CreateUpdatePath(&PathParams{Sender: 2, Leaf: g.tree.Leaf(2), Signer: g.members[2].signer,
		GroupContext: g.ctx(), Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	buf = inPlace(created.Path)
	path, err := wire.DecodeInPlace[wire.UpdatePath](buf)
	if err != nil {
		t.Fatal(err)
	}
	tr = g.tree.Clone()
	if _, err := tr.ApplyUpdatePath(2, path, nil, g.ctx(), g.members[0].priv, g.pol); err != nil {
		t.Fatal(err)
	}
	keys := [][]byte{path.LeafNode.EncryptionKey}
	for _, n := range path.Nodes {
		keys = append(keys, n.EncryptionKey)
	}
	check("UpdatePath", tr, buf, keys...)
}
