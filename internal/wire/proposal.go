package wire

import "github.com/mlskit/mlskit/internal/codec"

// --- RFC 9420, Section 12.1 ---

// Marshal encodes x. For a proposal type other than 1..7 the body is Unknown
// as opaque data<V> (see Proposal). RFC 9420, Section 12.1.
func (x *Proposal) Marshal(b *codec.Builder) {
	b.AddUint16(uint16(x.ProposalType))
	var body codec.Marshaler
	switch x.ProposalType {
	case ProposalTypeAdd:
		body = nilIfNil(x.Add)
	case ProposalTypeUpdate:
		body = nilIfNil(x.Update)
	case ProposalTypeRemove:
		body = nilIfNil(x.Remove)
	case ProposalTypePSK:
		body = nilIfNil(x.PreSharedKey)
	case ProposalTypeReInit:
		body = nilIfNil(x.ReInit)
	case ProposalTypeExternalInit:
		body = nilIfNil(x.ExternalInit)
	case ProposalTypeGroupContextExtensions:
		body = nilIfNil(x.GroupContextExtensions)
	default:
		b.AddOpaque(x.Unknown)
		return
	}
	if body == nil {
		b.SetError(errMissingBody)
		return
	}
	body.Marshal(b)
}

// nilIfNil turns a typed nil pointer into a nil interface.
func nilIfNil[T any, P interface {
	*T
	codec.Marshaler
}](p P) codec.Marshaler {
	if p == nil {
		return nil
	}
	return p
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *Proposal) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Proposal) decode(d *decoder) bool {
	*x = Proposal{}
	start := d.b
	if !readU16(d, &x.ProposalType) {
		return false
	}
	var ok bool
	switch x.ProposalType {
	case ProposalTypeAdd:
		x.Add = new(Add)
		ok = x.Add.decode(d)
	case ProposalTypeUpdate:
		x.Update = new(Update)
		ok = x.Update.decode(d)
	case ProposalTypeRemove:
		x.Remove = new(Remove)
		ok = x.Remove.decode(d)
	case ProposalTypePSK:
		x.PreSharedKey = new(PreSharedKey)
		ok = x.PreSharedKey.decode(d)
	case ProposalTypeReInit:
		x.ReInit = new(ReInit)
		ok = x.ReInit.decode(d)
	case ProposalTypeExternalInit:
		x.ExternalInit = new(ExternalInit)
		ok = x.ExternalInit.decode(d)
	case ProposalTypeGroupContextExtensions:
		x.GroupContextExtensions = new(GroupContextExtensions)
		ok = x.GroupContextExtensions.decode(d)
	default:
		ok = d.opaque(&x.Unknown)
	}
	if ok {
		x.raw = consumed(start, d)
	}
	return ok
}

// Raw returns the encoding x was decoded from, or nil if x was not decoded.
// It is not updated when x's fields change. (A proposal reference hashes
// the enclosing AuthenticatedContent, not this.)
func (x *Proposal) Raw() []byte { return x.raw }

// Marshal encodes x. RFC 9420, Section 12.1.1.
func (x *Add) Marshal(b *codec.Builder) { x.KeyPackage.Marshal(b) }

// Unmarshal decodes x from r; x aliases r's input.
func (x *Add) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Add) decode(d *decoder) bool { return x.KeyPackage.decode(d) }

// Marshal encodes x. RFC 9420, Section 12.1.2.
func (x *Update) Marshal(b *codec.Builder) { x.LeafNode.Marshal(b) }

// Unmarshal decodes x from r; x aliases r's input.
func (x *Update) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Update) decode(d *decoder) bool { return x.LeafNode.decode(d) }

// Marshal encodes x. RFC 9420, Section 12.1.3.
func (x *Remove) Marshal(b *codec.Builder) { b.AddUint32(x.Removed) }

// Unmarshal decodes x from r.
func (x *Remove) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Remove) decode(d *decoder) bool { return d.u32(&x.Removed) }

// Marshal encodes x. RFC 9420, Section 12.1.4.
func (x *PreSharedKey) Marshal(b *codec.Builder) { x.PSK.Marshal(b) }

// Unmarshal decodes x from r; x aliases r's input.
func (x *PreSharedKey) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *PreSharedKey) decode(d *decoder) bool { return x.PSK.decode(d) }

// Marshal encodes x. RFC 9420, Section 12.1.5.
func (x *ReInit) Marshal(b *codec.Builder) {
	b.AddOpaque(x.GroupID)
	b.AddUint16(uint16(x.Version))
	b.AddUint16(uint16(x.CipherSuite))
	addExtensions(b, x.Extensions)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *ReInit) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *ReInit) decode(d *decoder) bool {
	return d.opaque(&x.GroupID) && readU16(d, &x.Version) && readU16(d, &x.CipherSuite) &&
		decodeExtensions(d, &x.Extensions)
}

// Marshal encodes x. RFC 9420, Section 12.1.6.
func (x *ExternalInit) Marshal(b *codec.Builder) { b.AddOpaque(x.KEMOutput) }

// Unmarshal decodes x from r; x aliases r's input.
func (x *ExternalInit) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *ExternalInit) decode(d *decoder) bool { return d.opaque(&x.KEMOutput) }

// Marshal encodes x. RFC 9420, Section 12.1.7.
func (x *GroupContextExtensions) Marshal(b *codec.Builder) { addExtensions(b, x.Extensions) }

// Unmarshal decodes x from r; x aliases r's input.
func (x *GroupContextExtensions) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *GroupContextExtensions) decode(d *decoder) bool { return decodeExtensions(d, &x.Extensions) }

// --- RFC 9420, Section 8.4 ---

// Marshal encodes x. RFC 9420, Section 8.4.
func (x *PreSharedKeyID) Marshal(b *codec.Builder) {
	b.AddUint8(uint8(x.PSKType))
	switch x.PSKType {
	case PSKTypeExternal:
		b.AddOpaque(x.PSKID)
	case PSKTypeResumption:
		b.AddUint8(uint8(x.Usage))
		b.AddOpaque(x.PSKGroupID)
		b.AddUint64(x.PSKEpoch)
	default:
		b.SetError(errUnknownSelect)
	}
	b.AddOpaque(x.PSKNonce)
}

// Unmarshal decodes x from r; x aliases r's input. An unknown psktype is
// malformed; an unknown resumption usage is kept (it selects nothing).
func (x *PreSharedKeyID) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *PreSharedKeyID) decode(d *decoder) bool {
	*x = PreSharedKeyID{}
	off := d.off
	if !readU8(d, &x.PSKType) {
		return false
	}
	switch x.PSKType {
	case PSKTypeExternal:
		if !d.opaque(&x.PSKID) {
			return false
		}
	case PSKTypeResumption:
		if !(readU8(d, &x.Usage) && d.opaque(&x.PSKGroupID) && d.u64(&x.PSKEpoch)) {
			return false
		}
	default:
		return d.errAt(off, "unknown psk type")
	}
	return d.opaque(&x.PSKNonce)
}

// Marshal encodes x. RFC 9420, Section 8.4.
func (x *PSKLabel) Marshal(b *codec.Builder) {
	x.ID.Marshal(b)
	b.AddUint16(x.Index)
	b.AddUint16(x.Count)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *PSKLabel) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *PSKLabel) decode(d *decoder) bool {
	return x.ID.decode(d) && readU16(d, &x.Index) && readU16(d, &x.Count)
}

// --- RFC 9420, Section 12.4 ---

// Marshal encodes x. RFC 9420, Section 12.4.
func (x *ProposalOrRef) Marshal(b *codec.Builder) {
	b.AddUint8(uint8(x.Type))
	switch x.Type {
	case ProposalOrRefTypeProposal:
		if x.Proposal == nil {
			b.SetError(errMissingBody)
			return
		}
		x.Proposal.Marshal(b)
	case ProposalOrRefTypeReference:
		b.AddOpaque(x.Reference)
	default:
		b.SetError(errUnknownSelect)
	}
}

// Unmarshal decodes x from r; x aliases r's input. An unknown type is
// malformed.
func (x *ProposalOrRef) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *ProposalOrRef) decode(d *decoder) bool {
	*x = ProposalOrRef{}
	off := d.off
	if !readU8(d, &x.Type) {
		return false
	}
	switch x.Type {
	case ProposalOrRefTypeProposal:
		x.Proposal = new(Proposal)
		return x.Proposal.decode(d)
	case ProposalOrRefTypeReference:
		return d.opaque((*[]byte)(&x.Reference))
	}
	return d.errAt(off, "unknown proposal-or-ref type")
}

// Marshal encodes x. RFC 9420, Section 12.4.
func (x *Commit) Marshal(b *codec.Builder) {
	addList(b, x.Proposals, (*ProposalOrRef).Marshal)
	b.AddOptional(x.Path != nil)
	if x.Path != nil {
		x.Path.Marshal(b)
	}
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *Commit) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Commit) decode(d *decoder) bool {
	*x = Commit{}
	start := d.b
	var present bool
	if !decodeList(d, &x.Proposals, (*ProposalOrRef).decode) || !d.optional(&present) {
		return false
	}
	if present {
		x.Path = new(UpdatePath)
		if !x.Path.decode(d) {
			return false
		}
	}
	x.raw = consumed(start, d)
	return true
}

// Raw returns the encoding x was decoded from, or nil if x was not decoded.
// It is not updated when x's fields change.
func (x *Commit) Raw() []byte { return x.raw }
