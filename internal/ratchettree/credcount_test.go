package ratchettree

import (
	"crypto/rand"
	"maps"
	"testing"

	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// TestDecodedCredentialCounts: a decoded tree sums its credential-type
// counts (RFC 9420, Section 7.3: types in use, types every member supports)
// in one pass and writes each type once; the counts must be those the tree
// keeps leaf by leaf as nodes are written. Leaves use different types,
// list some twice in their capabilities, and some leaves are blank.
func TestDecodedCredentialCounts(t *testing.T) {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	key := func() []byte {
		k := make([]byte, 32)
		rand.Read(k)
		return k
	}
	const n = 64
	nodes := make(wire.RatchetTree, treemath.Width(n))
	for i := range n {
		if i%7 == 3 {
			continue // blank leaf
		}
		l := testLeaf(key(), key())
		l.Credential.CredentialType = wire.CredentialType(1 + i%3)
		l.Capabilities.Credentials = []wire.CredentialType{wire.CredentialType(1 + i%3), wire.CredentialType(1 + i%5), 0xff00 + wire.CredentialType(i%2)}
		if i%4 == 0 { // a type listed twice counts once
			l.Capabilities.Credentials = append(l.Capabilities.Credentials, l.Capabilities.Credentials[0])
		}
		nodes[2*i] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: l}
	}
	for x := 1; x < len(nodes); x += 2 {
		if x%5 != 0 {
			nodes[x] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &wire.ParentNode{EncryptionKey: key(), ParentHash: []byte{}}}
		}
	}
	for len(nodes) > 0 && nodes[len(nodes)-1] == nil {
		nodes = nodes[:len(nodes)-1]
	}
	decoded, err := FromNodes(s, nodes)
	if err != nil {
		t.Fatal(err)
	}
	written := New(s, nodes[0].LeafNode)
	written.grow(n)
	for i, nd := range nodes[1:] {
		if nd != nil {
			written.write(NodeIndex(i+1), nd)
		}
	}
	counts := func(m *pmap[uint32]) map[string]uint32 {
		out := map[string]uint32{}
		m.each(func(k []byte, v uint32) bool { out[string(k)] = v; return true })
		return out
	}
	for _, c := range []struct {
		name string
		d, w *pmap[uint32]
	}{{"in use", &decoded.credUsed, &written.credUsed}, {"supported", &decoded.credSupport, &written.credSupport}} {
		d, w := counts(c.d), counts(c.w)
		if len(d) < 2 || !maps.Equal(d, w) {
			t.Errorf("credential types %s: decoded %v, written leaf by leaf %v", c.name, d, w)
		}
	}
	if decoded.enc.len() != written.enc.len() || decoded.sig.len() != written.sig.len() {
		t.Errorf("key indexes: decoded %d/%d keys, written %d/%d", decoded.enc.len(), decoded.sig.len(), written.enc.len(), written.sig.len())
	}
}
