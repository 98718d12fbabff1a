package wire

import "github.com/mlskit/mlskit/internal/codec"

// --- RFC 9420, Section 7.2: LeafNode ---

// leafCore is the part of LeafNode and LeafNodeTBS before the signature or
// the TBS-only context.
func marshalLeafCore(b *codec.Builder, encKey, sigKey []byte, cred *Credential, caps *Capabilities,
	src LeafNodeSource, life *Lifetime, parentHash []byte, exts []Extension) {
	b.AddOpaque(encKey)
	b.AddOpaque(sigKey)
	cred.Marshal(b)
	caps.Marshal(b)
	b.AddUint8(uint8(src))
	switch src {
	case LeafNodeSourceKeyPackage:
		life.Marshal(b)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		b.AddOpaque(parentHash)
	default:
		b.SetError(errUnknownSelect)
	}
	addExtensions(b, exts)
}

// Marshal encodes x. RFC 9420, Section 7.2.
func (x *LeafNode) Marshal(b *codec.Builder) {
	marshalLeafCore(b, x.EncryptionKey, x.SignatureKey, &x.Credential, &x.Capabilities,
		x.LeafNodeSource, &x.Lifetime, x.ParentHash, x.Extensions)
	b.AddOpaque(x.Signature)
}

// Unmarshal decodes x from r; x aliases r's input. An unknown
// leaf_node_source is malformed.
func (x *LeafNode) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *LeafNode) decode(d *decoder) bool {
	*x = LeafNode{}
	start := d.b
	if !(d.opaque(&x.EncryptionKey) && d.opaque(&x.SignatureKey) &&
		x.Credential.decode(d) && x.Capabilities.decode(d)) {
		return false
	}
	srcOff := d.off
	if !readU8(d, &x.LeafNodeSource) {
		return false
	}
	switch x.LeafNodeSource {
	case LeafNodeSourceKeyPackage:
		if !x.Lifetime.decode(d) {
			return false
		}
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		if !d.opaque(&x.ParentHash) {
			return false
		}
	default:
		return d.errAt(srcOff, "unknown leaf node source")
	}
	if !decodeExtensions(d, &x.Extensions) || !d.opaque(&x.Signature) {
		return false
	}
	x.raw = consumed(start, d)
	return true
}

// Raw returns the encoding x was decoded from, or nil if x was not decoded.
// It is not updated when x's fields change.
func (x *LeafNode) Raw() []byte { return x.raw }

// Detached returns x with bytes of its own: x's encoding copied into one
// allocation and decoded again there. A decoded LeafNode points into the
// message it came in, and a ratchet tree keeps a leaf until its member
// commits again: kept as decoded, a leaf set by a commit would keep that
// whole commit (2 KB in a full 1,000-member tree, 80 KB in a sparse one),
// and one added by an Add the whole message of Adds. A LeafNode that was
// not decoded (Raw is nil) is returned as it is.
func (x *LeafNode) Detached() *LeafNode {
	if x.raw == nil {
		return x
	}
	d, err := DecodeInPlace[LeafNode](append([]byte(nil), x.raw...))
	if err != nil { // not reached: raw was decoded once already
		return x
	}
	return d
}

// TBS returns the encoded LeafNodeTBS that x's signature covers (the content
// of SignWithLabel(., "LeafNodeTBS", .)). groupID and leafIndex are the
// context the update and commit sources sign; they are ignored for
// key_package leaves. It returns nil only if x cannot be encoded.
// RFC 9420, Section 7.2.
func (x *LeafNode) TBS(groupID []byte, leafIndex uint32) []byte {
	t := x.ToBeSigned(groupID, leafIndex)
	out, err := codec.Marshal(&t)
	if err != nil {
		return nil
	}
	return out
}

// ToBeSigned returns x's LeafNodeTBS with the given context.
func (x *LeafNode) ToBeSigned(groupID []byte, leafIndex uint32) LeafNodeTBS {
	t := LeafNodeTBS{
		EncryptionKey:  x.EncryptionKey,
		SignatureKey:   x.SignatureKey,
		Credential:     x.Credential,
		Capabilities:   x.Capabilities,
		LeafNodeSource: x.LeafNodeSource,
		Lifetime:       x.Lifetime,
		ParentHash:     x.ParentHash,
		Extensions:     x.Extensions,
	}
	if x.LeafNodeSource == LeafNodeSourceUpdate || x.LeafNodeSource == LeafNodeSourceCommit {
		t.GroupID, t.LeafIndex = groupID, leafIndex
	}
	return t
}

// Marshal encodes x; GroupID and LeafIndex are encoded only for the update
// and commit sources. RFC 9420, Section 7.2.
func (x *LeafNodeTBS) Marshal(b *codec.Builder) {
	marshalLeafCore(b, x.EncryptionKey, x.SignatureKey, &x.Credential, &x.Capabilities,
		x.LeafNodeSource, &x.Lifetime, x.ParentHash, x.Extensions)
	if x.LeafNodeSource == LeafNodeSourceUpdate || x.LeafNodeSource == LeafNodeSourceCommit {
		b.AddOpaque(x.GroupID)
		b.AddUint32(x.LeafIndex)
	}
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *LeafNodeTBS) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *LeafNodeTBS) decode(d *decoder) bool {
	*x = LeafNodeTBS{}
	if !(d.opaque(&x.EncryptionKey) && d.opaque(&x.SignatureKey) &&
		x.Credential.decode(d) && x.Capabilities.decode(d)) {
		return false
	}
	srcOff := d.off
	if !readU8(d, &x.LeafNodeSource) {
		return false
	}
	switch x.LeafNodeSource {
	case LeafNodeSourceKeyPackage:
		if !x.Lifetime.decode(d) {
			return false
		}
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		if !d.opaque(&x.ParentHash) {
			return false
		}
	default:
		return d.errAt(srcOff, "unknown leaf node source")
	}
	if !decodeExtensions(d, &x.Extensions) {
		return false
	}
	if x.LeafNodeSource != LeafNodeSourceKeyPackage {
		return d.opaque(&x.GroupID) && d.u32(&x.LeafIndex)
	}
	return true
}

// --- RFC 9420, Section 10: KeyPackage ---

func marshalKeyPackageCore(b *codec.Builder, v ProtocolVersion, cs CipherSuite, initKey []byte,
	leaf *LeafNode, exts []Extension) {
	b.AddUint16(uint16(v))
	b.AddUint16(uint16(cs))
	b.AddOpaque(initKey)
	leaf.Marshal(b)
	addExtensions(b, exts)
}

// Marshal encodes x. RFC 9420, Section 10.
func (x *KeyPackage) Marshal(b *codec.Builder) {
	marshalKeyPackageCore(b, x.Version, x.CipherSuite, x.InitKey, &x.LeafNode, x.Extensions)
	b.AddOpaque(x.Signature)
}

// Unmarshal decodes x from r; x aliases r's input. The version and cipher
// suite are not checked here: they are policy, not syntax.
func (x *KeyPackage) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *KeyPackage) decode(d *decoder) bool {
	start := d.b
	if !(readU16(d, &x.Version) && readU16(d, &x.CipherSuite) && d.opaque(&x.InitKey) &&
		x.LeafNode.decode(d) && decodeExtensions(d, &x.Extensions) && d.opaque(&x.Signature)) {
		return false
	}
	x.raw = consumed(start, d)
	return true
}

// Raw returns the encoding x was decoded from (what KeyPackageRef hashes), or
// nil if x was not decoded. It is not updated when x's fields change.
func (x *KeyPackage) Raw() []byte { return x.raw }

// TBS returns the encoded KeyPackageTBS that x's signature covers, or nil if
// x cannot be encoded. RFC 9420, Section 10.
func (x *KeyPackage) TBS() []byte {
	t := KeyPackageTBS{x.Version, x.CipherSuite, x.InitKey, x.LeafNode, x.Extensions}
	out, err := codec.Marshal(&t)
	if err != nil {
		return nil
	}
	return out
}

// Marshal encodes x. RFC 9420, Section 10.
func (x *KeyPackageTBS) Marshal(b *codec.Builder) {
	marshalKeyPackageCore(b, x.Version, x.CipherSuite, x.InitKey, &x.LeafNode, x.Extensions)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *KeyPackageTBS) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *KeyPackageTBS) decode(d *decoder) bool {
	return readU16(d, &x.Version) && readU16(d, &x.CipherSuite) && d.opaque(&x.InitKey) &&
		x.LeafNode.decode(d) && decodeExtensions(d, &x.Extensions)
}
