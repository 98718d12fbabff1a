package ratchettree

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/treemath"
)

// Saving a member's private tree state.
//
// The encoding, mlskit's own (the caller versions it):
//
//	struct {
//	    uint32 leaf;
//	    NodeKey keys<V>;          // ascending node index
//	} PrivateState;
//
//	struct { uint32 node; opaque private_key<V>; } NodeKey;
//
// Public keys are not stored: ReadPrivateState derives each from its private
// key and checks it against the tree, so a stored key that does not belong
// to the tree is caught at load time rather than when a commit fails to
// decrypt.

// ErrCorruptPrivateState means a stored private state does not decode or
// does not match the tree it is loaded with.
var ErrCorruptPrivateState = errors.New("ratchettree: corrupt saved private state")

// MarshalState appends the PrivateState encoding of p to b.
func (p *PrivateState) MarshalState(b *codec.Builder) {
	b.AddUint32(uint32(p.leaf))
	b.AddVector(func(b *codec.Builder) {
		for _, x := range p.Nodes() {
			b.AddUint32(uint32(x))
			b.AddOpaque(p.keys[x].priv)
		}
	})
}

// ReadPrivateState reads a PrivateState encoding from r and checks it
// against t: the leaf is a non-blank leaf of t, the leaf's own key is
// present, every node is on the leaf's direct path or the leaf itself, and
// every private key matches the public key t holds for its node. Errors
// wrap ErrCorruptPrivateState; on failure no key read is kept.
func ReadPrivateState(t *Tree, r *codec.Reader) (*PrivateState, error) {
	var leaf uint32
	if !r.ReadUint32(&leaf) {
		return nil, fmt.Errorf("%w: truncated", ErrCorruptPrivateState)
	}
	p := &PrivateState{leaf: LeafIndex(leaf), keys: map[NodeIndex]keyPair{}}
	var bad error
	prev := int64(-1)
	ok := r.ReadList(func(r *codec.Reader) bool {
		var x uint32
		var priv []byte
		if !r.ReadUint32(&x) || !r.ReadOpaque(&priv) {
			return false
		}
		node := NodeIndex(x)
		switch {
		case int64(x) <= prev:
			bad = errors.New("nodes out of order")
		case x >= t.Width() || !treemath.InSubtree(p.leaf.Node(), node):
			bad = fmt.Errorf("node %d is not on leaf %d's direct path", x, leaf)
		}
		if bad == nil {
			pub, err := t.suite.KEMPublicKey(priv)
			switch want := t.EncryptionKey(node); {
			case err != nil:
				bad = fmt.Errorf("private key for node %d does not load", x)
			case want == nil || string(want) != string(pub):
				bad = fmt.Errorf("private key for node %d does not match the tree", x)
			default:
				p.keys[node] = keyPair{priv, pub}
			}
		}
		if bad != nil {
			clear(priv)
			return false
		}
		prev = int64(x)
		return true
	})
	if ok && bad == nil {
		if t.Leaf(p.leaf) == nil {
			bad = fmt.Errorf("leaf %d is blank", leaf)
		} else if _, has := p.keys[p.leaf.Node()]; !has {
			bad = fmt.Errorf("no key for leaf %d", leaf)
		}
	}
	if !ok || bad != nil {
		for _, k := range p.keys {
			clear(k.priv)
		}
		if bad == nil {
			bad = errors.New("malformed")
		}
		return nil, fmt.Errorf("%w: %w", ErrCorruptPrivateState, bad)
	}
	return p, nil
}
