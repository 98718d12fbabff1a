package wire

import "github.com/mlskit/mlskit/internal/codec"

// --- RFC 9420, Section 12.4.3 ---

func marshalGroupInfoCore(b *codec.Builder, gc *GroupContext, exts []Extension, tag []byte, signer uint32) {
	gc.Marshal(b)
	addExtensions(b, exts)
	b.AddOpaque(tag)
	b.AddUint32(signer)
}

// Marshal encodes x. RFC 9420, Section 12.4.3.
func (x *GroupInfo) Marshal(b *codec.Builder) {
	marshalGroupInfoCore(b, &x.GroupContext, x.Extensions, x.ConfirmationTag, x.Signer)
	b.AddOpaque(x.Signature)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *GroupInfo) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *GroupInfo) decode(d *decoder) bool {
	start := d.b
	if !(x.GroupContext.decode(d) && decodeExtensions(d, &x.Extensions) && d.opaque(&x.ConfirmationTag) &&
		d.u32(&x.Signer) && d.opaque(&x.Signature)) {
		return false
	}
	x.raw = consumed(start, d)
	return true
}

// Raw returns the encoding x was decoded from, or nil if x was not decoded.
// It is not updated when x's fields change.
func (x *GroupInfo) Raw() []byte { return x.raw }

// TBS returns the encoded GroupInfoTBS that x's signature covers, or nil if
// x cannot be encoded. RFC 9420, Section 12.4.3.
func (x *GroupInfo) TBS() []byte {
	t := GroupInfoTBS{x.GroupContext, x.Extensions, x.ConfirmationTag, x.Signer}
	out, err := codec.Marshal(&t)
	if err != nil {
		return nil
	}
	return out
}

// Marshal encodes x. RFC 9420, Section 12.4.3.
func (x *GroupInfoTBS) Marshal(b *codec.Builder) {
	marshalGroupInfoCore(b, &x.GroupContext, x.Extensions, x.ConfirmationTag, x.Signer)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *GroupInfoTBS) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *GroupInfoTBS) decode(d *decoder) bool {
	return x.GroupContext.decode(d) && decodeExtensions(d, &x.Extensions) && d.opaque(&x.ConfirmationTag) &&
		d.u32(&x.Signer)
}

// --- RFC 9420, Section 12.4.3.1 ---

// Marshal encodes x. RFC 9420, Section 12.4.3.1.
func (x *PathSecret) Marshal(b *codec.Builder) { b.AddOpaque(x.PathSecret) }

// Unmarshal decodes x from r; x aliases r's input.
func (x *PathSecret) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *PathSecret) decode(d *decoder) bool { return d.opaque(&x.PathSecret) }

// Marshal encodes x. RFC 9420, Section 12.4.3.1.
func (x *GroupSecrets) Marshal(b *codec.Builder) {
	b.AddOpaque(x.JoinerSecret)
	b.AddOptional(x.PathSecret != nil)
	if x.PathSecret != nil {
		x.PathSecret.Marshal(b)
	}
	addList(b, x.PSKs, (*PreSharedKeyID).Marshal)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *GroupSecrets) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *GroupSecrets) decode(d *decoder) bool {
	*x = GroupSecrets{}
	var present bool
	if !d.opaque(&x.JoinerSecret) || !d.optional(&present) {
		return false
	}
	if present {
		x.PathSecret = new(PathSecret)
		if !x.PathSecret.decode(d) {
			return false
		}
	}
	return decodeList(d, &x.PSKs, (*PreSharedKeyID).decode)
}

// Marshal encodes x. RFC 9420, Section 12.4.3.1.
func (x *EncryptedGroupSecrets) Marshal(b *codec.Builder) {
	b.AddOpaque(x.NewMember)
	x.EncryptedGroupSecrets.Marshal(b)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *EncryptedGroupSecrets) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *EncryptedGroupSecrets) decode(d *decoder) bool {
	return d.opaque((*[]byte)(&x.NewMember)) && x.EncryptedGroupSecrets.decode(d)
}

// Marshal encodes x. RFC 9420, Section 12.4.3.1.
func (x *Welcome) Marshal(b *codec.Builder) {
	b.AddUint16(uint16(x.CipherSuite))
	addList(b, x.Secrets, (*EncryptedGroupSecrets).Marshal)
	b.AddOpaque(x.EncryptedGroupInfo)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *Welcome) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Welcome) decode(d *decoder) bool {
	return readU16(d, &x.CipherSuite) && decodeList(d, &x.Secrets, (*EncryptedGroupSecrets).decode) &&
		d.opaque(&x.EncryptedGroupInfo)
}
