package wire

import "github.com/mlskit/mlskit/internal/codec"

// --- RFC 9420, Section 7.1 ---

// Marshal encodes x. RFC 9420, Section 7.1.
func (x *ParentNode) Marshal(b *codec.Builder) {
	b.AddOpaque(x.EncryptionKey)
	b.AddOpaque(x.ParentHash)
	addU32List(b, x.UnmergedLeaves)
}

// EncodedLen is the length of x's encoding (Marshal), for sizing buffers.
func (x *ParentNode) EncodedLen() int {
	ul := 4 * len(x.UnmergedLeaves)
	return codec.VarintLen(uint64(len(x.EncryptionKey))) + len(x.EncryptionKey) +
		codec.VarintLen(uint64(len(x.ParentHash))) + len(x.ParentHash) +
		codec.VarintLen(uint64(ul)) + ul
}

// AppendTo appends x's encoding (Marshal's) to buf, without a Builder: a
// ratchet tree's thousands of parent nodes are encoded straight into one
// buffer sized with EncodedLen. A field too long for a varint sets *err.
func (x *ParentNode) AppendTo(buf []byte, err *error) []byte {
	buf = codec.AppendVarint(buf, uint64(len(x.EncryptionKey)), err)
	buf = append(buf, x.EncryptionKey...)
	buf = codec.AppendVarint(buf, uint64(len(x.ParentHash)), err)
	buf = append(buf, x.ParentHash...)
	buf = codec.AppendVarint(buf, 4*uint64(len(x.UnmergedLeaves)), err)
	for _, l := range x.UnmergedLeaves {
		buf = append(buf, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
	}
	return buf
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *ParentNode) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *ParentNode) decode(d *decoder) bool {
	return d.opaque(&x.EncryptionKey) && d.opaque(&x.ParentHash) && decodeU32List(d, &x.UnmergedLeaves)
}

// --- RFC 9420, Section 12.4.3.3 ---

// Marshal encodes x. RFC 9420, Section 12.4.3.3.
func (x *Node) Marshal(b *codec.Builder) {
	b.AddUint8(uint8(x.NodeType))
	switch x.NodeType {
	case NodeTypeLeaf:
		if x.LeafNode == nil {
			b.SetError(errMissingBody)
			return
		}
		x.LeafNode.Marshal(b)
	case NodeTypeParent:
		if x.ParentNode == nil {
			b.SetError(errMissingBody)
			return
		}
		x.ParentNode.Marshal(b)
	default:
		b.SetError(errUnknownSelect)
	}
}

// Unmarshal decodes x from r; x aliases r's input. An unknown node type is
// malformed.
func (x *Node) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Node) decode(d *decoder) bool {
	*x = Node{}
	off := d.off
	if !readU8(d, &x.NodeType) {
		return false
	}
	switch x.NodeType {
	case NodeTypeLeaf:
		x.LeafNode = new(LeafNode)
		return x.LeafNode.decode(d)
	case NodeTypeParent:
		x.ParentNode = new(ParentNode)
		return x.ParentNode.decode(d)
	}
	return d.errAt(off, "unknown node type")
}

// Marshal encodes x as optional<Node> ratchet_tree<V>. RFC 9420, Section
// 12.4.3.3.
func (x *RatchetTree) Marshal(b *codec.Builder) {
	b.AddVector(func(b *codec.Builder) {
		for _, n := range *x {
			b.AddOptional(n != nil)
			if n != nil {
				n.Marshal(b)
			}
		}
	})
}

// Unmarshal decodes x from r; x aliases r's input. Only syntax is checked:
// whether the node count and blank pattern make a valid tree is for the
// ratchet tree code (RFC 9420, Section 12.4.3.3).
func (x *RatchetTree) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *RatchetTree) decode(d *decoder) bool {
	return decodeList(d, (*[]*Node)(x), decodeOptionalNode)
}

// IndexedNode is a non-blank node at Index of a SparseRatchetTree.
type IndexedNode struct {
	Index uint32
	Node  *Node
}

// Marshal encodes x as optional<Node> ratchet_tree<V>, its blank nodes
// written out. RFC 9420, Section 12.4.3.3.
func (x *SparseRatchetTree) Marshal(b *codec.Builder) {
	b.AddVector(func(b *codec.Builder) {
		i := uint32(0)
		for _, in := range x.Nodes {
			for ; i < in.Index; i++ {
				b.AddOptional(false)
			}
			b.AddOptional(true)
			in.Node.Marshal(b)
			i++
		}
		for ; i < x.Width; i++ {
			b.AddOptional(false)
		}
	})
}

// Unmarshal decodes x from r; x aliases r's input. It reads the same bytes
// as RatchetTree.Unmarshal but allocates nothing for blank nodes.
func (x *SparseRatchetTree) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *SparseRatchetTree) decode(d *decoder) bool { return x.decodeEach(d, nil) }

// DecodeSparseRatchetTree is DecodeInPlace[SparseRatchetTree] (the nodes
// point into data, which must not change afterwards: a tree lives as long
// as the group) that also calls each (if non-nil) with every non-blank node
// as soon as it is decoded, in index order, so that work on the first nodes
// can start while the rest decode. A node passed to each is the one in the
// result, but the result may still be an error: a caller that started work
// must drop it then.
func DecodeSparseRatchetTree(data []byte, each func(IndexedNode)) (*SparseRatchetTree, error) {
	x := new(SparseRatchetTree)
	if err := decodeInto(x, data, func(d *decoder) bool { return x.decodeEach(d, each) }); err != nil {
		return nil, err
	}
	return x, nil
}

func (x *SparseRatchetTree) decodeEach(d *decoder, each func(IndexedNode)) bool {
	*x = SparseRatchetTree{}
	s, ok := d.vector()
	if !ok {
		return false
	}
	for !s.empty() {
		var n *Node
		if !decodeOptionalNode(&n, &s) {
			return false
		}
		if n != nil {
			in := IndexedNode{Index: x.Width, Node: n}
			x.Nodes = append(x.Nodes, in)
			if each != nil {
				each(in)
			}
		}
		x.Width++ // at most the vector's length, below 2^30
	}
	return true
}

func decodeOptionalNode(n **Node, d *decoder) bool {
	var present bool
	if !d.optional(&present) {
		return false
	}
	if !present {
		return true
	}
	*n = new(Node)
	return (*n).decode(d)
}

// --- RFC 9420, Section 7.6 ---

// Marshal encodes x. RFC 9420, Section 7.6.
func (x *HPKECiphertext) Marshal(b *codec.Builder) {
	b.AddOpaque(x.KEMOutput)
	b.AddOpaque(x.Ciphertext)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *HPKECiphertext) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *HPKECiphertext) decode(d *decoder) bool {
	return d.opaque(&x.KEMOutput) && d.opaque(&x.Ciphertext)
}

// Marshal encodes x. RFC 9420, Section 7.6.
func (x *UpdatePathNode) Marshal(b *codec.Builder) {
	b.AddOpaque(x.EncryptionKey)
	if x.received() {
		b.AddOpaque(x.sealed) // the vector as received
		return
	}
	addList(b, x.cts, (*HPKECiphertext).Marshal)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *UpdatePathNode) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

// decode checks every ciphertext of the node (as decodeList would decode
// them, with the same verdict at the same offset) and keeps the vector.
func (x *UpdatePathNode) decode(d *decoder) bool {
	if !d.opaque(&x.EncryptionKey) {
		return false
	}
	s, ok := d.vector()
	if !ok {
		return false
	}
	sealed, n := s.b, 0
	var c HPKECiphertext
	for ; !s.empty(); n++ {
		if !c.decode(&s) {
			return false
		}
	}
	x.cts, x.sealed, x.n = nil, sealed, n
	return true
}

// received reports whether x holds its ciphertexts as decoded.
func (x *UpdatePathNode) received() bool { return x.cts == nil && x.sealed != nil }

// Secrets is the number of x's encrypted path secrets.
func (x *UpdatePathNode) Secrets() int {
	if x.received() {
		return x.n
	}
	return len(x.cts)
}

// Secret returns x's i-th encrypted path secret (it aliases x), and false
// when there is none.
func (x *UpdatePathNode) Secret(i int) (HPKECiphertext, bool) {
	if i < 0 || i >= x.Secrets() {
		return HPKECiphertext{}, false
	}
	if !x.received() {
		return x.cts[i], true
	}
	d := decoder{b: x.sealed}
	var c HPKECiphertext
	for ; i >= 0; i-- {
		if !c.decode(&d) {
			return HPKECiphertext{}, false // not reached: decode checked them all
		}
	}
	return c, true
}

// AllSecrets returns x's encrypted path secrets in a new slice (its
// elements alias x), reading a received vector once.
func (x *UpdatePathNode) AllSecrets() []HPKECiphertext {
	if !x.received() {
		return append([]HPKECiphertext{}, x.cts...)
	}
	out := make([]HPKECiphertext, x.n)
	d := decoder{b: x.sealed}
	for i := range out {
		out[i].decode(&d) // decode checked them all
	}
	return out
}

// SetSecrets makes cts x's encrypted path secrets (x keeps the slice).
func (x *UpdatePathNode) SetSecrets(cts []HPKECiphertext) {
	x.cts, x.sealed, x.n = cts, nil, 0
	if x.cts == nil {
		x.cts = []HPKECiphertext{}
	}
}

// Marshal encodes x. RFC 9420, Section 7.6.
func (x *UpdatePath) Marshal(b *codec.Builder) {
	x.LeafNode.Marshal(b)
	addList(b, x.Nodes, (*UpdatePathNode).Marshal)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *UpdatePath) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *UpdatePath) decode(d *decoder) bool {
	start := d.b
	if !x.LeafNode.decode(d) || !decodeList(d, &x.Nodes, (*UpdatePathNode).decode) {
		return false
	}
	x.raw = consumed(start, d)
	return true
}

// Raw returns the encoding x was decoded from, or nil if x was not decoded.
// It is not updated when x's fields change.
func (x *UpdatePath) Raw() []byte { return x.raw }

// --- RFC 9420, Section 7.9 ---

// Marshal encodes x. RFC 9420, Section 7.9.
func (x *ParentHashInput) Marshal(b *codec.Builder) {
	b.AddOpaque(x.EncryptionKey)
	b.AddOpaque(x.ParentHash)
	b.AddOpaque(x.OriginalSiblingTreeHash)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *ParentHashInput) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *ParentHashInput) decode(d *decoder) bool {
	return d.opaque(&x.EncryptionKey) && d.opaque(&x.ParentHash) && d.opaque(&x.OriginalSiblingTreeHash)
}

// --- RFC 9420, Section 7.8 ---

// Marshal encodes x. RFC 9420, Section 7.8.
func (x *LeafNodeHashInput) Marshal(b *codec.Builder) {
	b.AddUint32(x.LeafIndex)
	b.AddOptional(x.LeafNode != nil)
	if x.LeafNode != nil {
		x.LeafNode.Marshal(b)
	}
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *LeafNodeHashInput) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *LeafNodeHashInput) decode(d *decoder) bool {
	*x = LeafNodeHashInput{}
	var present bool
	if !d.u32(&x.LeafIndex) || !d.optional(&present) {
		return false
	}
	if present {
		x.LeafNode = new(LeafNode)
		return x.LeafNode.decode(d)
	}
	return true
}

// Marshal encodes x. RFC 9420, Section 7.8.
func (x *ParentNodeHashInput) Marshal(b *codec.Builder) {
	b.AddOptional(x.ParentNode != nil)
	if x.ParentNode != nil {
		x.ParentNode.Marshal(b)
	}
	b.AddOpaque(x.LeftHash)
	b.AddOpaque(x.RightHash)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *ParentNodeHashInput) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *ParentNodeHashInput) decode(d *decoder) bool {
	*x = ParentNodeHashInput{}
	var present bool
	if !d.optional(&present) {
		return false
	}
	if present {
		x.ParentNode = new(ParentNode)
		if !x.ParentNode.decode(d) {
			return false
		}
	}
	return d.opaque(&x.LeftHash) && d.opaque(&x.RightHash)
}

// Marshal encodes x. RFC 9420, Section 7.8.
func (x *TreeHashInput) Marshal(b *codec.Builder) {
	b.AddUint8(uint8(x.NodeType))
	switch x.NodeType {
	case NodeTypeLeaf:
		if x.LeafNode == nil {
			b.SetError(errMissingBody)
			return
		}
		x.LeafNode.Marshal(b)
	case NodeTypeParent:
		if x.ParentNode == nil {
			b.SetError(errMissingBody)
			return
		}
		x.ParentNode.Marshal(b)
	default:
		b.SetError(errUnknownSelect)
	}
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *TreeHashInput) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *TreeHashInput) decode(d *decoder) bool {
	*x = TreeHashInput{}
	off := d.off
	if !readU8(d, &x.NodeType) {
		return false
	}
	switch x.NodeType {
	case NodeTypeLeaf:
		x.LeafNode = new(LeafNodeHashInput)
		return x.LeafNode.decode(d)
	case NodeTypeParent:
		x.ParentNode = new(ParentNodeHashInput)
		return x.ParentNode.decode(d)
	}
	return d.errAt(off, "unknown node type")
}
