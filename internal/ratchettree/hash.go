package ratchettree

import (
	"encoding/binary"
	"hash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// TreeHash returns the tree hash of the root (RFC 9420, Section 7.8).
// Hashes are cached per node and only the nodes whose subtree changed since
// the last call are rehashed: after a commit that is O(log n) hashes.
func (t *Tree) TreeHash() []byte { return t.hashOf(t.Root()) }

// NodeHash returns the tree hash of the subtree headed by x (RFC 9420,
// Section 7.8), or nil if x is outside the tree.
func (t *Tree) NodeHash(x NodeIndex) []byte {
	if uint32(x) >= t.Width() {
		return nil
	}
	return t.hashOf(x)
}

// nodeHashes counts tree hash computations, for tests that check how many
// nodes a change rehashes.
var nodeHashes atomic.Int64

func (t *Tree) hashOf(x NodeIndex) []byte {
	sl := t.st.get(x)
	if sl.hash != nil {
		return sl.hash
	}
	if sl.resolution == 0 && !t.st.allocated(x) {
		// Every node below x is blank and x's chunk does not exist;
		// caching the hash in the slot would allocate it.
		return t.blankHash(x)
	}
	nodeHashes.Add(1)
	var h []byte
	if x.IsLeaf() {
		h = t.leafHash(x.Leaf(), t.st.get(x).node)
	} else {
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		var pn *wire.ParentNode
		if n := t.st.get(x).node; n != nil {
			pn = n.ParentNode
		}
		h = t.parentHashInputHash(pn, t.hashOf(l), t.hashOf(r))
	}
	t.st.mut(x).hash = h
	return h
}

// blankHashes memoises blankHash for a tree and its clones. The hash of an
// all-blank subtree is a function of its position alone, so an entry never
// goes stale; the mutex makes sharing it between clones safe.
type blankHashes struct {
	mu sync.Mutex
	m  map[NodeIndex][]byte
}

// blankHash returns the tree hash of the subtree at x, every node of which
// is blank (RFC 9420, Section 7.8). It depends only on x (blank leaves hash
// their leaf_index), costs one hash per node the first time, and
// allocates only the memo entry: a tree of 2^19 blank leaves decoded from
// 1 MiB is hashed without an allocation per node (issue 12, finding 7).
func (t *Tree) blankHash(x NodeIndex) []byte {
	t.blank.mu.Lock()
	defer t.blank.mu.Unlock()
	if h, ok := t.blank.m[x]; ok {
		return h
	}
	nh := t.suite.HashSize()
	level := int(treemath.Level(x))
	// Per level of recursion: the two child hashes, and room for the
	// largest hash input, a blank ParentNodeHashInput (node type, absent
	// parent node, two opaque<V> hashes; nh < 64 so each length is one
	// octet).
	scratch := make([]byte, (level+1)*2*nh+2+2*(1+nh))
	out := make([]byte, nh)
	hashBlankSubtree(t.suite.NewHash(), x, out, scratch, nh)
	if t.blank.m == nil {
		t.blank.m = map[NodeIndex][]byte{}
	}
	t.blank.m[x] = out
	return out
}

// hashBlankSubtree writes into dst the tree hash of the all-blank subtree
// at x, using stack for the child hashes and hash inputs below it.
func hashBlankSubtree(h hash.Hash, x NodeIndex, dst, stack []byte, nh int) {
	nodeHashes.Add(1)
	if x.IsLeaf() {
		// TreeHashInput{leaf, LeafNodeHashInput{leaf_index, absent}}.
		in := stack[:6]
		in[0] = uint8(wire.NodeTypeLeaf)
		binary.BigEndian.PutUint32(in[1:5], uint32(x.Leaf()))
		in[5] = 0
		h.Reset()
		h.Write(in)
		h.Sum(dst[:0])
		return
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	left, right, rest := stack[:nh], stack[nh:2*nh], stack[2*nh:]
	hashBlankSubtree(h, l, left, rest, nh)
	hashBlankSubtree(h, r, right, rest, nh)
	// TreeHashInput{parent, ParentNodeHashInput{absent, left, right}}.
	in := rest[:0]
	in = append(in, uint8(wire.NodeTypeParent), 0, byte(nh))
	in = append(in, left...)
	in = append(in, byte(nh))
	in = append(in, right...)
	h.Reset()
	h.Write(in)
	h.Sum(dst[:0])
}

// leafHash hashes TreeHashInput for a leaf, using the LeafNode's encoding as
// received when there is one.
func (t *Tree) leafHash(l LeafIndex, n *wire.Node) []byte {
	var leaf []byte
	if n != nil {
		// The LeafNode's encoding as received, else encoded here.
		if leaf = n.LeafNode.Raw(); leaf == nil {
			enc, err := codec.Marshal(n.LeafNode)
			if err != nil {
				// Only an unencodable leaf (e.g. an unknown source set
				// by the caller) gets here; its hash is of nothing
				// anyone can match.
				return t.suite.Hash(nil)
			}
			leaf = enc
		}
	}
	// TreeHashInput{leaf, LeafNodeHashInput{leaf_index, optional leaf}}.
	return t.suite.HashWith(func(h *suite.HashInput) {
		h.Uint8(uint8(wire.NodeTypeLeaf))
		h.Uint32(uint32(l))
		if n == nil {
			h.Uint8(0)
			return
		}
		h.Uint8(1)
		h.Write(leaf)
	})
}

// parentHashInputHash hashes TreeHashInput{parent, ParentNodeHashInput{
// optional pn, left_hash, right_hash}} as it is written.
func (t *Tree) parentHashInputHash(pn *wire.ParentNode, left, right []byte) []byte {
	return t.suite.HashWith(func(h *suite.HashInput) {
		h.Uint8(uint8(wire.NodeTypeParent))
		if pn == nil { // blank
			h.Uint8(0)
		} else {
			h.Uint8(1)
			h.Opaque(pn.EncryptionKey)
			h.Opaque(pn.ParentHash)
			h.Varint(4 * len(pn.UnmergedLeaves))
			for _, u := range pn.UnmergedLeaves {
				h.Uint32(u)
			}
		}
		h.Opaque(left)
		h.Opaque(right)
	})
}

// parentHash computes the parent hash of a node with encryption key key and
// parent_hash field ph, given its copath child's original tree hash
// (RFC 9420, Section 7.9).
func (t *Tree) parentHash(key, ph, siblingHash []byte) []byte {
	// ParentHashInput{encryption_key, parent_hash,
	// original_sibling_tree_hash}: three opaque<V> fields.
	return t.suite.HashWith(func(h *suite.HashInput) {
		h.Opaque(key)
		h.Opaque(ph)
		h.Opaque(siblingHash)
	})
}

// originalHash returns the tree hash of the subtree at x as it was before
// the leaves in excluded (sorted) were added: those leaves blanked and
// removed from every unmerged_leaves list (RFC 9420, Section 7.9). Only the
// subtrees holding an excluded leaf are rehashed; the rest come from the
// cache, so the cost is O(|excluded in x| * log n) hashes.
func (t *Tree) originalHash(x NodeIndex, excluded []uint32) []byte {
	lo, hi := leafRange(x)
	i, _ := slices.BinarySearch(excluded, lo)
	if i == len(excluded) || excluded[i] >= hi {
		return t.hashOf(x)
	}
	ex := excluded[i:]
	if j, _ := slices.BinarySearch(ex, hi); j < len(ex) {
		ex = ex[:j]
	}
	if x.IsLeaf() {
		return t.leafHash(x.Leaf(), nil)
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	var pn *wire.ParentNode
	if n := t.st.get(x).node; n != nil {
		p := *n.ParentNode
		p.UnmergedLeaves = slices.DeleteFunc(slices.Clone(p.UnmergedLeaves), func(u uint32) bool {
			_, found := slices.BinarySearch(ex, u)
			return found
		})
		pn = &p
	}
	return t.parentHashInputHash(pn, t.originalHash(l, ex), t.originalHash(r, ex))
}

// leafRange returns the leaf indices [lo, hi) under x.
func leafRange(x NodeIndex) (lo, hi uint32) {
	k := treemath.Level(x)
	lo = uint32(x) >> (k + 1) << k
	return lo, lo + 1<<k
}
