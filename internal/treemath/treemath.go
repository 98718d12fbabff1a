// Package treemath is the index arithmetic of the array-based ratchet tree
// (RFC 9420, Appendix C). The tree is always complete: its leaf count is a
// power of two (Section 7.7), so every function here takes the leaf count n and
// assumes it is a power of two. Node indices put leaf i at node 2i and parents
// at odd indices.
package treemath

import "math/bits"

// NodeIndex is the position of a node in the array representation.
type NodeIndex uint32

// LeafIndex is the position of a leaf among the leaves (leaf i is node 2i).
type LeafIndex uint32

// NoNode is the node index of no node in any tree: a tree has at most 2^31
// leaves (Section 7.7 leaves node indices as uint32), so its width is below
// 2^32-1, and NoNode is odd, so it is never taken for a leaf.
const NoNode = NodeIndex(1<<32 - 1)

// Node returns the node index of leaf l, or NoNode when 2l does not fit in
// a NodeIndex. A leaf_index of 2^31+k comes only from a peer; mapping it to
// node 2k would make it an alias of leaf k (RFC 9420, Appendix C), so every
// lookup of NoNode finds nothing instead.
func (l LeafIndex) Node() NodeIndex {
	if l >= 1<<31 {
		return NoNode
	}
	return NodeIndex(2 * l)
}

// InTree reports whether l is a leaf of a tree with n leaves. Every leaf
// index a peer sends must pass it before it is used (RFC 9420, Sections 6
// and 12.1).
func (l LeafIndex) InTree(n uint32) bool { return uint32(l) < n }

// IsLeaf reports whether x is a leaf node (even index).
func (x NodeIndex) IsLeaf() bool { return x&1 == 0 }

// Leaf returns the leaf index of a leaf node. It is meaningful only when
// x.IsLeaf().
func (x NodeIndex) Leaf() LeafIndex { return LeafIndex(x >> 1) }

// Level is the height of x above the leaves: 0 for leaves, and for a parent the
// number of trailing one bits of its index.
func Level(x NodeIndex) uint {
	return uint(bits.TrailingZeros32(^uint32(x)))
}

// Width is the number of nodes in a tree with n leaves: 2n-1, or 0 when n = 0.
func Width(n uint32) uint32 {
	if n == 0 {
		return 0
	}
	return 2*(n-1) + 1
}

// log2 is floor(log2(x)), and 0 for x = 0.
func log2(x uint32) uint {
	if x == 0 {
		return 0
	}
	return uint(bits.Len32(x) - 1)
}

// Root is the index of the root of a tree with n leaves.
func Root(n uint32) NodeIndex {
	return NodeIndex(uint32(1)<<log2(Width(n)) - 1)
}

// Left returns the left child of x; ok is false for a leaf.
func Left(x NodeIndex) (NodeIndex, bool) {
	k := Level(x)
	if k == 0 {
		return 0, false
	}
	return x ^ NodeIndex(1)<<(k-1), true
}

// Right returns the right child of x; ok is false for a leaf.
func Right(x NodeIndex) (NodeIndex, bool) {
	k := Level(x)
	if k == 0 {
		return 0, false
	}
	return x ^ NodeIndex(3)<<(k-1), true
}

// Parent returns the parent of x in a tree of n leaves; ok is false at the
// root or outside the tree.
func Parent(x NodeIndex, n uint32) (NodeIndex, bool) {
	if x == Root(n) || uint32(x) >= Width(n) {
		return 0, false
	}
	k := Level(x)
	b := (x >> (k + 1)) & 1
	return (x | 1<<k) ^ (b << (k + 1)), true
}

// Sibling returns the other child of x's parent; ok is false at the root.
func Sibling(x NodeIndex, n uint32) (NodeIndex, bool) {
	p, ok := Parent(x, n)
	if !ok {
		return 0, false
	}
	if x < p {
		return Right(p)
	}
	return Left(p)
}

// DirectPath returns the ancestors of x from its parent up to the root.
func DirectPath(x NodeIndex, n uint32) []NodeIndex {
	var d []NodeIndex
	for {
		p, ok := Parent(x, n)
		if !ok {
			return d
		}
		d = append(d, p)
		x = p
	}
}

// Copath returns the siblings of x and of each node of its direct path except
// the root, ordered from the leaf up.
func Copath(x NodeIndex, n uint32) []NodeIndex {
	var c []NodeIndex
	for {
		s, ok := Sibling(x, n)
		if !ok {
			return c
		}
		c = append(c, s)
		x, _ = Parent(x, n)
	}
}

// CommonAncestor is the lowest node that is x or y or an ancestor of both
// (RFC 9420, Appendix C, common_ancestor_direct).
func CommonAncestor(x, y NodeIndex) NodeIndex {
	lx, ly := Level(x)+1, Level(y)+1
	if lx <= ly && x>>ly == y>>ly {
		return y
	}
	if ly <= lx && x>>lx == y>>lx {
		return x
	}
	xn, yn := x, y
	k := uint(0)
	for xn != yn {
		xn, yn = xn>>1, yn>>1
		k++
	}
	return xn<<k + 1<<(k-1) - 1
}

// InSubtree reports whether x lies in the subtree rooted at a.
func InSubtree(x, a NodeIndex) bool {
	k := Level(a) + 1
	return x>>k == a>>k
}
