package ratchettree

import (
	"math/rand/v2"
	"testing"
)

// TestLeafOutOfRangeNoAlias: issue 12, finding 1. Leaf 2^31+k used to be
// read, updated and removed as leaf k.
func TestLeafOutOfRangeNoAlias(t *testing.T) {
	s := testSuite(t)
	r := rand.New(rand.NewPCG(12, 1))
	tr := New(s, testLeaf(randBytes(r, 32), randBytes(r, 32)))
	for range 3 {
		tr.AddLeaf(testLeaf(randBytes(r, 32), randBytes(r, 32)))
	}
	before, _ := tr.Encode()
	for _, l := range []LeafIndex{1 << 31, 1<<31 + 2, 4, 1<<32 - 1} {
		if tr.Leaf(l) != nil {
			t.Errorf("Leaf(%d) found a leaf", l)
		}
		if err := tr.UpdateLeaf(l, testLeaf(randBytes(r, 32), randBytes(r, 32))); err == nil {
			t.Errorf("UpdateLeaf(%d) succeeded", l)
		}
		if err := tr.RemoveLeaf(l); err == nil {
			t.Errorf("RemoveLeaf(%d) succeeded", l)
		}
	}
	if after, _ := tr.Encode(); string(after) != string(before) {
		t.Fatal("tree changed")
	}
}
