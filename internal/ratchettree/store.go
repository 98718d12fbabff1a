package ratchettree

import (
	"sync/atomic"

	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// The node store is the array representation of the tree (RFC 9420,
// Appendix C) split into fixed-size chunks that clones share copy-on-write,
// so that staging a commit on a large tree copies a few chunks, not the tree.
//
// Each slot also carries what the tree derives from the subtree below it,
// maintained along the ancestors of every node written (O(log n) per write):
// the number of non-blank leaves, the size of the node's resolution, and a
// cached tree hash (nil when stale).
//
// A chunk whose slots are all blank, with zero summaries and no cached
// hash, is not allocated (nil): a tree received from a peer can name 2^19
// leaves in 1 MiB of blank nodes, and its storage must grow with the bytes
// received, not with the tree they name (issue 12, finding 7). The tree
// hashes of such all-blank subtrees are computed without the store
// (blankHash).
//
// The chunks are reached through directories of dirSize chunks each,
// shared copy-on-write the same way: a clone copies the list of directories
// (one pointer per 4,096 nodes), not one pointer per chunk, and a write
// copies the directory of the chunk it copies. Staging a commit clones the
// tree, so with a flat list every commit copied a pointer per 64 nodes:
// 16 KiB at 50,000 members, allocated, copied and scanned by the collector
// each time; now 256 bytes and at most one 512-byte directory per level of
// the path written.
//
// The store is sized for capLeaves leaves, a power of two at least the
// tree's leaf count. Slots beyond the tree's width are always blank; their
// cached hashes stay valid, so truncating and then extending again (a Remove
// followed by an Add) does not rehash a blank half of the tree.

const (
	chunkBits = 6
	chunkSize = 1 << chunkBits
	dirBits   = 6
	dirSize   = 1 << dirBits // chunks per directory
)

type owner struct{ _ byte }

type slot struct {
	node       *wire.Node // nil: blank. Never mutated once stored.
	hash       []byte     // tree hash of the subtree (RFC 9420, Section 7.8); nil: stale
	leaves     uint32     // non-blank leaves in the subtree
	resolution uint32     // length of the resolution of this node (Section 4.1.1)
}

type chunk struct {
	owner *owner
	s     [chunkSize]slot
	// enc caches the encoding of the chunk's nodes as the ratchet_tree
	// extension lists them, made the second time they are encoded
	// (encoded: the first time was); see chunkEncoding. Writing a node
	// clears both. A chunk shared between a group's trees has the same
	// nodes in each, so whichever tree fills them fills them for all;
	// atomic because they may do so at once.
	enc     atomic.Pointer[[]byte]
	encoded atomic.Bool
}

// blankSlot is what get returns for a slot of an unallocated chunk. It is
// never written: every write goes through mut, which allocates the chunk.
var blankSlot slot

// dir is a directory of chunks (nil: blank).
type dir struct {
	owner *owner
	c     [dirSize]*chunk
}

type store struct {
	owner     *owner
	dirs      []*dir // nil: every chunk of it blank
	capLeaves uint32 // power of two, or 0 for an empty store
}

// clone returns a store sharing every directory and chunk with s. Both s
// and the clone get fresh owners, so whichever writes first copies the
// directory and the chunk it writes.
func (s *store) clone() store {
	s.owner = new(owner)
	return store{owner: new(owner), dirs: append([]*dir(nil), s.dirs...), capLeaves: s.capLeaves}
}

// chunkAt returns chunk i, nil if blank. i must be below the chunks of
// capLeaves leaves.
func (s *store) chunkAt(i treemath.NodeIndex) *chunk {
	d := s.dirs[i>>dirBits]
	if d == nil {
		return nil
	}
	return d.c[i&(dirSize-1)]
}

// get returns the slot of x for reading; the caller must not write through
// it. x must be below the width of capLeaves leaves.
func (s *store) get(x treemath.NodeIndex) *slot {
	c := s.chunkAt(x >> chunkBits)
	if c == nil {
		return &blankSlot
	}
	return &c.s[x&(chunkSize-1)]
}

// allocated reports whether x's chunk exists, so that caching something in
// its slot costs no allocation.
func (s *store) allocated(x treemath.NodeIndex) bool { return s.chunkAt(x>>chunkBits) != nil }

// mut returns the slot of x for writing, copying its chunk and the chunk's
// directory if they are shared.
func (s *store) mut(x treemath.NodeIndex) *slot {
	i := x >> chunkBits
	d := s.dirs[i>>dirBits]
	if d == nil {
		d = &dir{owner: s.owner}
		s.dirs[i>>dirBits] = d
	} else if d.owner != s.owner {
		d = &dir{owner: s.owner, c: d.c}
		s.dirs[i>>dirBits] = d
	}
	c := d.c[i&(dirSize-1)]
	if c == nil {
		c = &chunk{owner: s.owner}
		d.c[i&(dirSize-1)] = c
	} else if c.owner != s.owner {
		cc := &chunk{owner: s.owner, s: c.s}
		cc.enc.Store(c.enc.Load()) // the same nodes: the same encoding
		cc.encoded.Store(c.encoded.Load())
		c = cc
		d.c[i&(dirSize-1)] = c
	}
	return &c.s[x&(chunkSize-1)]
}

// grow makes room for at least n leaves. The new slots are blank; the
// summaries of the new ancestors of the old root are filled in.
func (s *store) grow(n uint32) {
	if n <= s.capLeaves {
		return
	}
	newCap := uint32(1)
	for newCap < n {
		newCap <<= 1
	}
	oldCap := s.capLeaves
	w := treemath.Width(newCap)
	for uint32(len(s.dirs))*dirSize*chunkSize < w {
		s.dirs = append(s.dirs, nil) // blank until written
	}
	s.capLeaves = newCap
	if oldCap == 0 {
		return
	}
	// The old root's new ancestors are blank; their summaries come from
	// their children (the right children are blank subtrees).
	for x, ok := treemath.Parent(treemath.Root(oldCap), newCap); ok; x, ok = treemath.Parent(x, newCap) {
		s.refresh(x)
	}
}

// refreshFrom refreshes x and then each of its ancestors, bottom-up: after
// puts (nil for blank) to x or any of its ancestors, the summaries and
// cached hashes are current again.
func (s *store) refreshFrom(x treemath.NodeIndex) {
	s.refresh(x)
	s.refreshAbove(x)
}

// refreshAbove is refreshFrom for the ancestors of x only (x itself
// unchanged).
func (s *store) refreshAbove(x treemath.NodeIndex) {
	for p, ok := treemath.Parent(x, s.capLeaves); ok; p, ok = treemath.Parent(p, s.capLeaves) {
		s.refresh(p)
	}
}

// put stores node (nil for blank) at x, leaving the summaries to the
// caller (refreshFrom).
func (s *store) put(x treemath.NodeIndex, node *wire.Node) {
	sl := s.mut(x)
	sl.node = node
	// Loads first: a tree being decoded writes every node of chunks
	// that never held an encoding, and a load costs less than a store.
	c := s.chunkAt(x >> chunkBits)
	if c.enc.Load() != nil {
		c.enc.Store(nil)
	}
	if c.encoded.Load() {
		c.encoded.Store(false)
	}
}

// refresh recomputes the summary of x from its node and its children's
// summaries, and marks its hash stale.
func (s *store) refresh(x treemath.NodeIndex) {
	sl := s.mut(x)
	sl.hash = nil
	n := sl.node
	if x.IsLeaf() {
		sl.leaves, sl.resolution = 0, 0
		if n != nil {
			sl.leaves, sl.resolution = 1, 1
		}
		return
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	ls, rs := s.get(l), s.get(r)
	sl.leaves = ls.leaves + rs.leaves
	if n != nil {
		sl.resolution = 1 + uint32(len(n.ParentNode.UnmergedLeaves))
	} else {
		sl.resolution = ls.resolution + rs.resolution
	}
}
