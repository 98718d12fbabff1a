package ratchettree

import (
	"errors"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

func savePrivate(t *testing.T, p *PrivateState) []byte {
	t.Helper()
	b := codec.NewBuilder(nil)
	p.MarshalState(b)
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every member's private state, after a few commits, reloads against the
// tree with the same keys; truncated, foreign or mismatched states are
// refused.
func TestPrivateStateRoundTrip(t *testing.T) {
	g := newGroup(t)
	g.commit(0, nil, 5)
	g.commit(2, nil, 0)
	g.commit(4, []LeafIndex{1}, 0)
	for l, m := range g.members {
		enc := savePrivate(t, m.priv)
		r := codec.NewReader(enc)
		got, err := ReadPrivateState(g.tree, r)
		if err != nil || !r.Empty() {
			t.Fatalf("leaf %d: %v", l, err)
		}
		if got.Leaf() != m.priv.Leaf() || len(got.Nodes()) != len(m.priv.Nodes()) || len(got.Nodes()) < 2 {
			t.Fatalf("leaf %d: nodes %v, want %v", l, got.Nodes(), m.priv.Nodes())
		}
		for _, x := range m.priv.Nodes() {
			a, _ := m.priv.PrivateKey(x)
			b, ok := got.PrivateKey(x)
			if !ok || string(a) != string(b) {
				t.Fatalf("leaf %d node %d: key differs", l, x)
			}
		}
		for i := range len(enc) {
			if _, err := ReadPrivateState(g.tree, codec.NewReader(enc[:i])); !errors.Is(err, ErrCorruptPrivateState) {
				t.Fatalf("prefix %d: %v", i, err)
			}
		}
	}
	// Member 0's keys claimed for member 2's leaf, and member 0's state
	// against an older tree: both refused.
	a, b := g.members[0], g.members[2]
	enc := savePrivate(t, a.priv)
	enc[3] = byte(b.priv.Leaf())
	if _, err := ReadPrivateState(g.tree, codec.NewReader(enc)); !errors.Is(err, ErrCorruptPrivateState) {
		t.Fatalf("keys under another leaf: %v", err)
	}
	old := g.tree.Clone()
	g.commit(3, nil, 0)
	if _, err := ReadPrivateState(old, codec.NewReader(savePrivate(t, g.members[0].priv))); !errors.Is(err, ErrCorruptPrivateState) {
		t.Fatalf("state against an outdated tree: %v", err)
	}
}
