package ratchettree

import (
	"slices"

	"github.com/mlskit/mlskit/internal/treemath"
)

// Resolution returns the resolution of x (RFC 9420, Section 4.1.1): the
// non-blank nodes covering x's subtree, left to right, each non-blank node
// followed by its unmerged leaves. Blank subtrees are skipped using the
// cached resolution sizes, so the cost is proportional to the result's
// length times the depth of the blanks traversed.
func (t *Tree) Resolution(x NodeIndex) []NodeIndex {
	if uint32(x) >= t.Width() {
		return nil
	}
	out := make([]NodeIndex, 0, t.st.get(x).resolution)
	return t.resolve(x, nil, out)
}

// resolve appends the resolution of x, leaving out the leaves in excluded
// (sorted leaf indices), to out.
func (t *Tree) resolve(x NodeIndex, excluded []uint32, out []NodeIndex) []NodeIndex {
	sl := t.st.get(x)
	if sl.resolution == 0 {
		return out
	}
	if n := sl.node; n != nil {
		if x.IsLeaf() {
			if !contains(excluded, uint32(x.Leaf())) {
				out = append(out, x)
			}
			return out
		}
		out = append(out, x)
		for _, u := range n.ParentNode.UnmergedLeaves {
			if !contains(excluded, u) {
				out = append(out, LeafIndex(u).Node())
			}
		}
		return out
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	return t.resolve(r, excluded, t.resolve(l, excluded, out))
}

func contains(sorted []uint32, v uint32) bool {
	_, ok := slices.BinarySearch(sorted, v)
	return ok
}

// countIn returns how many of the sorted leaf indices lie under x.
func countIn(sorted []uint32, x NodeIndex) int {
	lo, hi := leafRange(x)
	i, _ := slices.BinarySearch(sorted, lo)
	j, _ := slices.BinarySearch(sorted, hi)
	return j - i
}

// FilteredDirectPath returns the filtered direct path of leaf l (RFC 9420,
// Section 4.1.2): the parents on l's direct path whose child on l's copath
// has a non-empty resolution, from the leaf up. O(log n).
func (t *Tree) FilteredDirectPath(l LeafIndex) []NodeIndex {
	var out []NodeIndex
	for _, pc := range t.filteredPath(l) {
		out = append(out, pc.parent)
	}
	return out
}

type pathStep struct {
	parent, copath NodeIndex // a node of the filtered direct path and its copath child
}

func (t *Tree) filteredPath(l LeafIndex) []pathStep {
	var out []pathStep
	x := l.Node()
	for {
		p, ok := treemath.Parent(x, t.n)
		if !ok {
			return out
		}
		s, _ := treemath.Sibling(x, t.n)
		if t.st.get(s).resolution != 0 {
			out = append(out, pathStep{parent: p, copath: s})
		}
		x = p
	}
}

// resolutionPosition finds where leaf r appears in the resolution of c with
// the leaves in excluded (sorted) left out: the position of the entry whose
// private key r holds (r's leaf, or the non-blank ancestor of r that covers
// it) and that entry's node. It walks one path from c towards r, so it
// costs O(log n) however large the resolution is; this is how a receiver
// picks its ciphertext from an UpdatePathNode without computing
// resolutions (RFC 9420, Section 7.6).
func (t *Tree) resolutionPosition(c NodeIndex, r LeafIndex, excluded []uint32) (int, NodeIndex, bool) {
	rn := r.Node()
	if !treemath.InSubtree(rn, c) {
		return 0, 0, false
	}
	pos := 0
	x := c
	for {
		sl := t.st.get(x)
		if n := sl.node; n != nil {
			if x.IsLeaf() {
				return pos, x, x == rn
			}
			um := n.ParentNode.UnmergedLeaves
			k, found := slices.BinarySearch(um, uint32(r))
			if !found {
				return pos, x, true
			}
			skipped := 0
			for _, e := range excluded {
				if e < uint32(r) && contains(um[:k], e) {
					skipped++
				}
			}
			return pos + 1 + k - skipped, rn, true
		}
		if x.IsLeaf() {
			return 0, 0, false
		}
		l, _ := treemath.Left(x)
		if treemath.InSubtree(rn, l) {
			x = l
			continue
		}
		pos += int(t.st.get(l).resolution) - countIn(excluded, l)
		x, _ = treemath.Right(x)
	}
}
