package treemath

import "testing"

// TestEightLeafTree checks the eight-leaf example of RFC 9420, Appendix C.
func TestEightLeafTree(t *testing.T) {
	if Root(8) != 7 || Width(8) != 15 {
		t.Fatalf("root %d width %d", Root(8), Width(8))
	}
	if d := DirectPath(0, 8); len(d) != 3 || d[0] != 1 || d[1] != 3 || d[2] != 7 {
		t.Fatalf("direct path of 0: %v", d)
	}
	if c := Copath(0, 8); len(c) != 3 || c[0] != 2 || c[1] != 5 || c[2] != 11 {
		t.Fatalf("copath of 0: %v", c)
	}
	if _, ok := Parent(7, 8); ok {
		t.Fatal("root has a parent")
	}
	if _, ok := Left(4); ok {
		t.Fatal("leaf has a child")
	}
	if a := CommonAncestor(2, 12); a != 7 {
		t.Fatalf("common ancestor of 2, 12: %d", a)
	}
	if a := CommonAncestor(8, 10); a != 9 {
		t.Fatalf("common ancestor of 8, 10: %d", a)
	}
	if !InSubtree(4, 3) || InSubtree(8, 3) {
		t.Fatal("InSubtree")
	}
}

// TestCommonAncestorSemantic compares the bit trick with the definition.
func TestCommonAncestorSemantic(t *testing.T) {
	const n = 32
	for x := NodeIndex(0); x < NodeIndex(Width(n)); x++ {
		for y := NodeIndex(0); y < NodeIndex(Width(n)); y++ {
			want := semantic(x, y, n)
			if got := CommonAncestor(x, y); got != want {
				t.Fatalf("CommonAncestor(%d,%d) = %d, want %d", x, y, got, want)
			}
		}
	}
}

func semantic(x, y NodeIndex, n uint32) NodeIndex {
	dx := map[NodeIndex]bool{x: true}
	for _, p := range DirectPath(x, n) {
		dx[p] = true
	}
	best, bestLevel := NodeIndex(0), uint(99)
	for _, p := range append([]NodeIndex{y}, DirectPath(y, n)...) {
		if dx[p] && Level(p) < bestLevel {
			best, bestLevel = p, Level(p)
		}
	}
	return best
}

// TestLeafNodeNoAlias: leaf 2^31+k must not map onto node 2k, the node of
// leaf k (issue 12, finding 1); it maps to NoNode, outside every tree.
func TestLeafNodeNoAlias(t *testing.T) {
	for _, k := range []LeafIndex{0, 1, 5, 1<<31 - 1} {
		l := LeafIndex(1<<31) + k
		if l < 1<<31 {
			continue
		}
		if x := l.Node(); x != NoNode {
			t.Errorf("LeafIndex(2^31+%d).Node() = %d, want NoNode", k, x)
		}
	}
	if x := LeafIndex(1<<31 - 1).Node(); x != 1<<32-2 {
		t.Errorf("largest leaf's node = %d", x)
	}
	if NoNode.IsLeaf() || uint32(NoNode) < Width(1<<31) {
		t.Error("NoNode is a leaf or inside the largest tree")
	}
	if _, ok := Parent(NoNode, 1<<30); ok {
		t.Error("NoNode has a parent")
	}
	if LeafIndex(8).InTree(8) || !LeafIndex(7).InTree(8) || LeafIndex(1<<31+3).InTree(8) {
		t.Error("InTree")
	}
}
