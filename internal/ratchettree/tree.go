package ratchettree

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync/atomic"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// NodeIndex and LeafIndex are the tree-math index types.
type (
	NodeIndex = treemath.NodeIndex
	LeafIndex = treemath.LeafIndex
)

// maxLeaves bounds the tree so that node indices fit in 32 bits.
const maxLeaves = 1 << 30

// Tree is a ratchet tree in array form (RFC 9420, Sections 4 and 7).
//
// The nodes it holds (*wire.Node and what they point to) are treated as
// immutable: the tree never modifies a node it has stored, and callers must
// not modify nodes they pass in or get back.
//
// A Tree is not safe for concurrent use, including concurrent reads: reading
// the tree hash fills caches, and Clone marks shared storage.
type Tree struct {
	suite *suite.Suite
	n     uint32 // leaf count: a power of two, at least 1
	st    store

	// Indexes for the uniqueness rules of RFC 9420, Section 7.3, kept up
	// to date on every write so each check is a lookup.
	enc pmap[keyUse] // HPKE public key -> node holding it
	sig pmap[keyUse] // signature key -> node (leaf) holding it
	// Credential types in use and supported, by leaf count, for the
	// "supported by all members" rule of Section 7.3.
	credUsed    pmap[uint32]
	credSupport pmap[uint32]
	// dups counts keys held by more than one node. It is non-zero only for
	// a tree decoded from a peer that breaks Section 7.3; Validate rejects
	// it.
	dups int

	// blank memoises the tree hashes of all-blank subtrees whose slots
	// are not allocated; shared with clones.
	blank *blankHashes
}

type keyUse struct {
	node  NodeIndex
	count uint32
}

// New returns a one-member tree holding leaf at leaf index 0 (RFC 9420,
// Section 11).
func New(s *suite.Suite, leaf *wire.LeafNode) *Tree {
	t := &Tree{suite: s}
	t.initIndexes()
	t.n = 1
	t.st.grow(1)
	t.write(0, &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: leaf})
	return t
}

func (t *Tree) initIndexes() {
	t.blank = new(blankHashes)
	t.st.owner = new(owner)
	t.enc.owner, t.sig.owner = new(owner), new(owner)
	t.credUsed.owner, t.credSupport.owner = new(owner), new(owner)
}

// Suite returns the cipher suite the tree hashes and encrypts with.
func (t *Tree) Suite() *suite.Suite { return t.suite }

// Clone returns an independent copy of t. It costs O(n/4096) pointer
// copies (one per chunk directory): nodes and indexes are shared
// copy-on-write, so staging a change on the clone copies only the parts it
// writes.
func (t *Tree) Clone() *Tree {
	c := &Tree{suite: t.suite, n: t.n, dups: t.dups, blank: t.blank}
	c.st = t.st.clone()
	c.enc = t.enc.clone()
	c.sig = t.sig.clone()
	c.credUsed = t.credUsed.clone()
	c.credSupport = t.credSupport.clone()
	return c
}

// LeafCount returns the number of leaves, blank or not (a power of two).
func (t *Tree) LeafCount() uint32 { return t.n }

// Width returns the number of nodes, 2*LeafCount()-1.
func (t *Tree) Width() uint32 { return treemath.Width(t.n) }

// Root returns the root's node index.
func (t *Tree) Root() NodeIndex { return treemath.Root(t.n) }

// MemberCount returns the number of non-blank leaves.
func (t *Tree) MemberCount() uint32 { return t.st.get(t.Root()).leaves }

// Node returns the node at x, or nil if it is blank or outside the tree.
func (t *Tree) Node(x NodeIndex) *wire.Node {
	if uint32(x) >= t.Width() {
		return nil
	}
	return t.st.get(x).node
}

// Leaf returns the leaf node at l, or nil if it is blank or outside the tree.
// A leaf index from the wire can be anything up to 2^32-1; one at or beyond
// the leaf count names no leaf (RFC 9420, Section 7.7), whatever its low bits.
func (t *Tree) Leaf(l LeafIndex) *wire.LeafNode {
	if !l.InTree(t.n) {
		return nil
	}
	if n := t.Node(l.Node()); n != nil {
		return n.LeafNode
	}
	return nil
}

// ParentNode returns the parent node at x, or nil if it is blank, a leaf or
// outside the tree.
func (t *Tree) ParentNode(x NodeIndex) *wire.ParentNode {
	if n := t.Node(x); n != nil {
		return n.ParentNode
	}
	return nil
}

// EncryptionKey returns the HPKE public key of the node at x, or nil if the
// node is blank.
func (t *Tree) EncryptionKey(x NodeIndex) []byte {
	return encryptionKey(t.Node(x))
}

func encryptionKey(n *wire.Node) []byte {
	switch {
	case n == nil:
		return nil
	case n.LeafNode != nil:
		return n.LeafNode.EncryptionKey
	case n.ParentNode != nil:
		return n.ParentNode.EncryptionKey
	}
	return nil
}

// Members calls f for each non-blank leaf in index order until f returns
// false. It skips blank subtrees, so it costs O(members * log n) at most.
func (t *Tree) Members(f func(LeafIndex, *wire.LeafNode) bool) {
	t.members(t.Root(), f)
}

func (t *Tree) members(x NodeIndex, f func(LeafIndex, *wire.LeafNode) bool) bool {
	sl := t.st.get(x)
	if sl.leaves == 0 {
		return true
	}
	if x.IsLeaf() {
		return f(x.Leaf(), sl.node.LeafNode)
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	return t.members(l, f) && t.members(r, f)
}

// FindEncryptionKey returns the node holding the HPKE public key key.
func (t *Tree) FindEncryptionKey(key []byte) (NodeIndex, bool) {
	u, ok := t.enc.get(key)
	return u.node, ok
}

// FindSignatureKey returns the leaf whose LeafNode has signature key key.
func (t *Tree) FindSignatureKey(key []byte) (LeafIndex, bool) {
	u, ok := t.sig.get(key)
	return u.node.Leaf(), ok
}

// FreeLeaf returns the leaf a new member would take: the leftmost blank leaf,
// or LeafCount() if there is none (the tree would be extended). RFC 9420,
// Section 12.1.1. O(log n).
func (t *Tree) FreeLeaf() LeafIndex {
	x := t.Root()
	if t.st.get(x).leaves == t.n {
		return LeafIndex(t.n)
	}
	for !x.IsLeaf() {
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		if t.st.get(l).leaves < subtreeLeaves(l) {
			x = l
		} else {
			x = r
		}
	}
	return x.Leaf()
}

func subtreeLeaves(x NodeIndex) uint32 { return 1 << treemath.Level(x) }

// --- writes ---

// write stores node at x (nil blanks it), keeping the indexes current.
func (t *Tree) write(x NodeIndex, node *wire.Node) {
	t.put(x, node)
	t.st.refreshFrom(x)
}

// put is write leaving the summaries of x and its ancestors stale: a
// change to a leaf's direct path puts each node and then refreshes the path
// once from the bottom (store.refreshFrom), where a write per node would
// walk the ancestors of each, O(log^2 n) for the path.
func (t *Tree) put(x NodeIndex, node *wire.Node) {
	if old := t.st.get(x).node; old != nil {
		t.unindex(x, old)
	}
	if node != nil {
		t.index(x, node)
	}
	t.st.put(x, node)
}

func (t *Tree) index(x NodeIndex, n *wire.Node) {
	t.indexKeys(x, n)
	if l := n.LeafNode; l != nil {
		t.countCreds(l, 1)
	}
}

// indexKeys is index without the credential counts.
func (t *Tree) indexKeys(x NodeIndex, n *wire.Node) {
	t.addKey(&t.enc, encryptionKey(n), x)
	if l := n.LeafNode; l != nil {
		t.addKey(&t.sig, l.SignatureKey, x)
	}
}

func (t *Tree) unindex(x NodeIndex, n *wire.Node) {
	t.dropKey(&t.enc, encryptionKey(n), x)
	if l := n.LeafNode; l != nil {
		t.dropKey(&t.sig, l.SignatureKey, x)
		t.countCreds(l, -1)
	}
}

func (t *Tree) addKey(m *pmap[keyUse], key []byte, x NodeIndex) {
	u, ok := m.get(key)
	if ok {
		u.count++
		t.dups++
	} else {
		u = keyUse{node: x, count: 1}
	}
	m.put(key, u)
}

func (t *Tree) dropKey(m *pmap[keyUse], key []byte, x NodeIndex) {
	u, ok := m.get(key)
	if !ok {
		return
	}
	if u.count <= 1 {
		m.delPresent(key)
		return
	}
	u.count--
	t.dups--
	if u.node == x {
		// The remaining holders are not tracked individually; the tree
		// is invalid (dups > 0) until they are gone.
		u.node = ^NodeIndex(0)
	}
	m.put(key, u)
}

func credKey(c wire.CredentialType) []byte {
	return binary.BigEndian.AppendUint16(nil, uint16(c))
}

func (t *Tree) countCreds(l *wire.LeafNode, d int) {
	bump := func(m *pmap[uint32], c wire.CredentialType) {
		k := credKey(c)
		v, _ := m.get(k)
		v = uint32(int(v) + d)
		if v == 0 {
			m.del(k)
		} else {
			m.put(k, v)
		}
	}
	bump(&t.credUsed, l.Credential.CredentialType)
	distinctCreds(l, nil, func(c wire.CredentialType) { bump(&t.credSupport, c) })
}

// distinctCreds calls f once for each credential type l supports, listed
// twice or not, using seen as scratch; it returns seen for reuse.
func distinctCreds(l *wire.LeafNode, seen []wire.CredentialType, f func(wire.CredentialType)) []wire.CredentialType {
	seen = seen[:0]
	for _, c := range l.Capabilities.Credentials {
		if !slices.Contains(seen, c) {
			seen = append(seen, c)
			f(c)
		}
	}
	return seen
}

// grow extends the tree to at least n leaves by doubling (RFC 9420,
// Section 7.7).
func (t *Tree) grow(n uint32) {
	for t.n < n {
		t.n *= 2
	}
	t.st.grow(t.n)
}

// truncate halves the tree while the right subtree of the root holds no
// non-blank leaf (RFC 9420, Sections 7.7 and 12.1.3). The discarded root
// is blanked, and so is any parent node left in the discarded half (only a
// tree that breaks the tree invariant can have one).
func (t *Tree) truncate() {
	for t.n > 1 {
		root := t.Root()
		r, _ := treemath.Right(root)
		if t.st.get(r).leaves != 0 {
			return
		}
		t.blankSubtree(r)
		t.write(root, nil)
		t.n /= 2
	}
}

func (t *Tree) blankSubtree(x NodeIndex) {
	sl := t.st.get(x)
	if sl.resolution == 0 {
		return
	}
	if sl.node != nil {
		t.write(x, nil)
	}
	if !x.IsLeaf() {
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		t.blankSubtree(l)
		t.blankSubtree(r)
	}
}

// blankDirectPath blanks the parents above leaf l, leaving the summaries of
// the path to the caller (store.refreshFrom or refreshAbove).
func (t *Tree) blankDirectPath(l LeafIndex) {
	for _, p := range treemath.DirectPath(l.Node(), t.n) {
		if t.st.get(p).node != nil {
			t.put(p, nil)
		}
	}
}

// AddLeaf places leaf in the leftmost blank leaf, extending the tree if
// there is none, and adds it to the unmerged leaves of each non-blank
// ancestor (RFC 9420, Section 12.1.1). It returns the new leaf's index.
// Validate the leaf first (ValidateLeafNode): AddLeaf checks nothing. The
// tree keeps a detached copy of leaf (wire.LeafNode.Detached), not the
// message it was decoded from.
func (t *Tree) AddLeaf(leaf *wire.LeafNode) (LeafIndex, error) {
	l := t.FreeLeaf()
	if uint32(l) >= maxLeaves {
		return 0, errors.New("mls: ratchet tree is full")
	}
	t.grow(uint32(l) + 1)
	for _, p := range treemath.DirectPath(l.Node(), t.n) {
		pn := t.st.get(p).node
		if pn == nil {
			continue
		}
		um := pn.ParentNode.UnmergedLeaves
		i, _ := slices.BinarySearch(um, uint32(l))
		nu := make([]uint32, 0, len(um)+1)
		nu = append(append(append(nu, um[:i]...), uint32(l)), um[i:]...)
		np := *pn.ParentNode
		np.UnmergedLeaves = nu
		t.put(p, &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &np})
	}
	t.write(l.Node(), &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: leaf.Detached()})
	return l, nil
}

// UpdateLeaf replaces the LeafNode at l and blanks l's direct path
// (RFC 9420, Section 12.1.2). Validate the leaf first. As AddLeaf, it keeps
// a detached copy of leaf.
func (t *Tree) UpdateLeaf(l LeafIndex, leaf *wire.LeafNode) error {
	if t.Leaf(l) == nil {
		return fail(ErrInvalidTree, "12.1.2", "update of blank or absent leaf %d", l)
	}
	t.blankDirectPath(l)
	t.write(l.Node(), &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: leaf.Detached()})
	return nil
}

// RemoveLeaf blanks leaf l and its direct path, then truncates the tree
// (RFC 9420, Section 12.1.3). Every key the removed member knew lives on
// that path, so none is left in the tree.
func (t *Tree) RemoveLeaf(l LeafIndex) error {
	if t.Leaf(l) == nil {
		return fail(ErrInvalidTree, "12.1.3", "remove of blank or absent leaf %d", l)
	}
	t.blankDirectPath(l)
	t.write(l.Node(), nil)
	t.truncate()
	return nil
}

// --- encoding (RFC 9420, Section 12.4.3.3) ---

// Nodes returns the tree as the ratchet_tree extension lists it: array
// order, blank nodes nil, trailing blank nodes left out. The nodes are
// shared with t; do not modify them.
func (t *Tree) Nodes() wire.RatchetTree {
	w := t.Width()
	for w > 0 && t.st.get(NodeIndex(w-1)).node == nil {
		w--
	}
	out := make(wire.RatchetTree, w)
	for i := range out {
		out[i] = t.st.get(NodeIndex(i)).node
	}
	return out
}

// Encode returns the encoding of the ratchet_tree extension's data.
//
// Each LeafNode is copied from its encoding as received or created (the
// bytes its tree hash covers, Section 7.8) rather than encoded again: leaves
// are most of a tree's bytes, and the group encodes the whole tree for the
// GroupInfo of every commit it sends and every state it saves. A chunk of
// the store encoded a second time keeps its encoding (see chunkEncoding), so
// a tree after a commit encodes again only the chunks the commit wrote (a
// path writes 6 of the 32 chunks of a 1,024-leaf tree) and copies
// the rest; a tree encoded once (a state loaded and saved) pays nothing for
// the cache. The output is the same as codec.Marshal(&nodes).
func (t *Tree) Encode() ([]byte, error) {
	e, err := t.Encoding()
	if err != nil {
		return nil, err
	}
	return e.AppendTo(make([]byte, 0, e.Len()))
}

// Encoding is a tree's encoding as Encode returns it, sized but not yet
// written: AppendTo writes it where it is needed (a wire.DataWriter, so a
// GroupInfo's ratchet_tree extension is written straight into the
// GroupInfo's encoding). It reads the tree when written, which must not
// change in between.
type Encoding struct {
	st        *store
	parts     []encPart
	content   int
	marshaled map[NodeIndex][]byte // nodes without received bytes (rare)
}

// An encPart is a run of the encoding: kept bytes, or nodes from..to-1 to
// encode when written.
type encPart struct {
	b        []byte
	from, to NodeIndex
}

var _ wire.DataWriter = (*Encoding)(nil)

// Len is the length of the encoding.
func (e *Encoding) Len() int { return codec.VarintLen(uint64(e.content)) + e.content }

// Encoding sizes t's encoding (see Encode).
func (t *Tree) Encoding() (*Encoding, error) {
	// The list ends at the last non-blank node (Section 12.4.3.3).
	w := t.Width()
	for w > 0 && t.st.get(NodeIndex(w-1)).node == nil {
		w--
	}
	full := w / chunkSize // chunks wholly inside the list
	e := &Encoding{st: &t.st, parts: make([]encPart, 0, full+1)}
	direct := func(from, to NodeIndex) error {
		n, err := t.st.nodesLen(from, to, &e.marshaled)
		e.parts = append(e.parts, encPart{from: from, to: to})
		e.content += n
		return err
	}
	for i := range full {
		from := NodeIndex(i * chunkSize)
		b, ok, err := t.st.chunkEncoding(i)
		if err == nil && !ok {
			err = direct(from, from+chunkSize)
		} else if ok {
			e.parts = append(e.parts, encPart{b: b})
			e.content += len(b)
		}
		if err != nil {
			return nil, err
		}
	}
	if from := NodeIndex(full * chunkSize); uint32(from) < w {
		if err := direct(from, NodeIndex(w)); err != nil {
			return nil, err
		}
	}
	if e.content > codec.MaxVarint {
		return nil, errors.New("ratchettree: tree too large to encode")
	}
	return e, nil
}

// AppendTo appends the encoding to out.
func (e *Encoding) AppendTo(out []byte) ([]byte, error) {
	var err error
	out = codec.AppendVarint(out, uint64(e.content), &err)
	for _, p := range e.parts {
		if p.b != nil {
			out = append(out, p.b...)
		} else {
			out = e.st.appendNodes(out, p.from, p.to, e.marshaled, &err)
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// blankChunk is the encoding of a chunk of blank nodes: an absent
// optional<Node> each.
var blankChunk [chunkSize]byte

// chunkEncoding returns the encoding of chunk i's nodes, in the order and
// form of the ratchet_tree extension's list (an optional<Node> each), when
// the chunk keeps it or is asked for it a second time since its nodes were
// written (then it is encoded and kept). The first time it reports false
// and the caller encodes the nodes where it writes them: a tree encoded
// once keeps nothing. The caller must not modify the bytes.
func (s *store) chunkEncoding(i uint32) ([]byte, bool, error) {
	c := s.chunkAt(NodeIndex(i))
	if c == nil {
		return blankChunk[:], true, nil
	}
	if p := c.enc.Load(); p != nil {
		return *p, true, nil
	}
	if !c.encoded.Swap(true) {
		return nil, false, nil
	}
	from := NodeIndex(i * chunkSize)
	var marshaled map[NodeIndex][]byte
	n, err := s.nodesLen(from, from+chunkSize, &marshaled)
	if err != nil {
		return nil, false, err
	}
	b := s.appendNodes(make([]byte, 0, n), from, from+chunkSize, marshaled, &err)
	if err != nil {
		return nil, false, err
	}
	c.enc.Store(&b)
	return b, true, nil
}

// nodesEncoded counts the nodes nodesLen walks, for the test that checks a
// change encodes again only the chunks it wrote.
var nodesEncoded atomic.Int64

// nodesLen returns the length of the encoding of the nodes from..to-1 as
// the ratchet_tree extension lists them, a walk without copying. A node
// without its received bytes (rare) is encoded here and kept in marshaled
// for appendNodes.
func (s *store) nodesLen(from, to NodeIndex, marshaled *map[NodeIndex][]byte) (int, error) {
	nodesEncoded.Add(int64(to - from))
	size := 0
	for x := from; x < to; x++ {
		n := s.get(x).node
		size++
		switch {
		case n == nil:
		case n.NodeType == wire.NodeTypeLeaf && n.LeafNode != nil && n.LeafNode.Raw() != nil:
			size += 1 + len(n.LeafNode.Raw())
		case n.NodeType == wire.NodeTypeParent && n.ParentNode != nil:
			size += 1 + n.ParentNode.EncodedLen()
		default:
			b, err := codec.Marshal(n)
			if err != nil {
				return 0, err
			}
			if *marshaled == nil {
				*marshaled = map[NodeIndex][]byte{}
			}
			(*marshaled)[x] = b
			size += len(b)
		}
	}
	return size, nil
}

// appendNodes appends the encoding of the nodes from..to-1 that nodesLen
// sized, without a Builder call per field.
func (s *store) appendNodes(out []byte, from, to NodeIndex, marshaled map[NodeIndex][]byte, err *error) []byte {
	for x := from; x < to; x++ {
		n := s.get(x).node
		switch b, ok := marshaled[x]; {
		case n == nil:
			out = append(out, 0)
		case ok:
			out = append(out, 1)
			out = append(out, b...)
		case n.NodeType == wire.NodeTypeLeaf:
			out = append(out, 1, uint8(wire.NodeTypeLeaf))
			out = append(out, n.LeafNode.Raw()...)
		default:
			out = append(out, 1, uint8(wire.NodeTypeParent))
			out = n.ParentNode.AppendTo(out, err)
		}
	}
	return out
}

// Decode parses the ratchet_tree extension's data (RFC 9420, Section
// 12.4.3.3). It checks the structure only: node types in the right places,
// a non-blank last node. Call Validate before trusting the tree.
//
// Blank nodes cost nothing but their octet: the nodes are decoded sparse
// and the store allocates no all-blank chunk, so the memory a peer's tree
// takes follows the bytes it sent, however many leaves they name (issue 12,
// finding 7).
func Decode(s *suite.Suite, data []byte) (*Tree, error) {
	nodes, err := wire.Decode[wire.SparseRatchetTree](data)
	if err != nil {
		return nil, err
	}
	return fromSparse(s, nodes)
}

// FromNodes builds a tree from the ratchet_tree extension's node list, with
// the structural checks of Decode. The nodes are kept, not copied.
func FromNodes(s *suite.Suite, nodes wire.RatchetTree) (*Tree, error) {
	sp := &wire.SparseRatchetTree{Width: uint32(min(len(nodes), 1<<32-1))}
	for i, nd := range nodes {
		if nd != nil {
			sp.Nodes = append(sp.Nodes, wire.IndexedNode{Index: uint32(i), Node: nd})
		}
	}
	return fromSparse(s, sp)
}

func fromSparse(s *suite.Suite, sp *wire.SparseRatchetTree) (*Tree, error) {
	nodes := sp.Nodes
	if sp.Width == 0 {
		return nil, fail(ErrInvalidTree, "12.4.3.3", "empty ratchet tree")
	}
	if len(nodes) == 0 || nodes[len(nodes)-1].Index != sp.Width-1 {
		return nil, fail(ErrInvalidTree, "12.4.3.3", "last node of ratchet tree is blank")
	}
	if sp.Width > 2*maxLeaves-1 {
		return nil, fail(ErrInvalidTree, "12.4.3.3", "ratchet tree too large")
	}
	n := uint32(1)
	for treemath.Width(n) < sp.Width {
		n *= 2
	}
	leaves := 0
	for _, in := range nodes {
		i, nd := in.Index, in.Node
		leafPos := i%2 == 0
		if leafPos {
			leaves++
		}
		switch {
		case leafPos && (nd.NodeType != wire.NodeTypeLeaf || nd.LeafNode == nil):
			return nil, fail(ErrInvalidTree, "12.4.3.3", "node %d: parent node at a leaf position", i)
		case !leafPos && (nd.NodeType != wire.NodeTypeParent || nd.ParentNode == nil):
			return nil, fail(ErrInvalidTree, "12.4.3.3", "node %d: leaf node at a parent position", i)
		}
	}
	t := &Tree{suite: s, n: n}
	t.initIndexes()
	t.st.grow(n)
	t.enc.reserve(len(nodes))
	t.sig.reserve(leaves)
	// Fill the slots, then compute the summaries bottom-up, level by level,
	// of the written nodes and their ancestors only, each once: O(n) for a
	// full tree, O(k log n) for k non-blank nodes, and nothing for the
	// blank rest. The credential counts are summed here and written once
	// per type: a leaf at a time, each count's entry would be replaced once
	// per leaf.
	var byLevel [33][]NodeIndex
	used, support := map[wire.CredentialType]uint32{}, map[wire.CredentialType]uint32{}
	var seen []wire.CredentialType
	for _, in := range nodes {
		x := NodeIndex(in.Index)
		t.indexKeys(x, in.Node)
		if l := in.Node.LeafNode; l != nil {
			used[l.Credential.CredentialType]++
			seen = distinctCreds(l, seen, func(c wire.CredentialType) { support[c]++ })
		}
		t.st.put(x, in.Node)
		lvl := treemath.Level(x)
		byLevel[lvl] = append(byLevel[lvl], x)
	}
	for c, v := range used {
		t.credUsed.put(credKey(c), v)
	}
	for c, v := range support {
		t.credSupport.put(credKey(c), v)
	}
	root := t.st.capLeaves
	var cur []NodeIndex
	for lvl := uint(0); lvl < uint(len(byLevel)); lvl++ {
		cur = append(cur, byLevel[lvl]...)
		if len(cur) == 0 {
			continue
		}
		slices.Sort(cur)
		cur = slices.Compact(cur)
		next := cur[:0:0]
		for _, x := range cur {
			t.st.refresh(x)
			if p, ok := treemath.Parent(x, root); ok && (len(next) == 0 || next[len(next)-1] != p) {
				next = append(next, p)
			}
		}
		cur = next
	}
	return t, nil
}
