package wire

import (
	"errors"
	"slices"

	"github.com/mlskit/mlskit/internal/codec"
)

// Errors set on a codec.Builder by Marshal when a value cannot be encoded.
// These are API misuse (a value built inconsistently), never peer input.
var (
	errMissingBody   = errors.New("mls: select arm's body is nil")
	errUnknownSelect = errors.New("mls: cannot encode an unknown select discriminant")
)

func addList[T any](b *codec.Builder, xs []T, f func(*T, *codec.Builder)) {
	b.AddVector(func(b *codec.Builder) {
		for i := range xs {
			f(&xs[i], b)
		}
	})
}

func addU16List[T ~uint16](b *codec.Builder, xs []T) {
	b.AddVector(func(b *codec.Builder) {
		for _, x := range xs {
			b.AddUint16(uint16(x))
		}
	})
}

func addU32List(b *codec.Builder, xs []uint32) {
	b.AddVector(func(b *codec.Builder) {
		for _, x := range xs {
			b.AddUint32(x)
		}
	})
}

func addOpaqueList(b *codec.Builder, xs [][]byte) {
	b.AddVector(func(b *codec.Builder) {
		for _, x := range xs {
			b.AddOpaque(x)
		}
	})
}

// errDuplicateExtension: RFC 9420, Section 13.4 forbids two extensions of
// one type in any extension list.
var errDuplicateExtension = errors.New("mls: extension list with a duplicate extension type (RFC 9420, Section 13.4)")

func addExtensions(b *codec.Builder, xs []Extension) {
	if hasDuplicateExtension(xs) {
		b.SetError(errDuplicateExtension)
		return
	}
	addList(b, xs, (*Extension).Marshal)
}

// decodeExtensions decodes an extension list (RFC 9420, Section 7.2,
// 10, 12.1.7, 12.4.3) and refuses one that holds two extensions of the same
// type (Section 13.4): implementations that read the first copy and those
// that read the last would disagree about what the object says. Every
// extension list of every struct goes through here, so the rule holds for
// LeafNode, KeyPackage, GroupInfo, GroupContext, GroupContextExtensions and
// ReInit alike.
func decodeExtensions(d *decoder, out *[]Extension) bool {
	start := d.off
	if !decodeList(d, out, (*Extension).decode) {
		return false
	}
	if hasDuplicateExtension(*out) {
		return d.errAt(start, "duplicate extension type")
	}
	return true
}

// hasDuplicateExtension reports whether two of xs have the same type, in
// O(n log n) and with allocation proportional to the list.
func hasDuplicateExtension(xs []Extension) bool {
	if len(xs) <= 16 {
		for i := range xs {
			for j := range i {
				if xs[i].ExtensionType == xs[j].ExtensionType {
					return true
				}
			}
		}
		return false
	}
	ts := make([]ExtensionType, len(xs))
	for i := range xs {
		ts[i] = xs[i].ExtensionType
	}
	slices.Sort(ts)
	for i := 1; i < len(ts); i++ {
		if ts[i] == ts[i-1] {
			return true
		}
	}
	return false
}

// --- RFC 9420, Section 5.1.2 ---

// Marshal encodes x. RFC 9420, Section 5.1.2.
func (x *SignContent) Marshal(b *codec.Builder) {
	b.AddOpaque(x.Label)
	b.AddOpaque(x.Content)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *SignContent) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *SignContent) decode(d *decoder) bool {
	return d.opaque(&x.Label) && d.opaque(&x.Content)
}

// --- RFC 9420, Section 5.1.3 ---

// Marshal encodes x. RFC 9420, Section 5.1.3.
func (x *EncryptContext) Marshal(b *codec.Builder) {
	b.AddOpaque(x.Label)
	b.AddOpaque(x.Context)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *EncryptContext) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *EncryptContext) decode(d *decoder) bool {
	return d.opaque(&x.Label) && d.opaque(&x.Context)
}

// --- RFC 9420, Section 5.2 ---

// Marshal encodes x. RFC 9420, Section 5.2.
func (x *RefHashInput) Marshal(b *codec.Builder) {
	b.AddOpaque(x.Label)
	b.AddOpaque(x.Value)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *RefHashInput) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *RefHashInput) decode(d *decoder) bool {
	return d.opaque(&x.Label) && d.opaque(&x.Value)
}

// --- RFC 9420, Section 8 ---

// Marshal encodes x. RFC 9420, Section 8.
func (x *KDFLabel) Marshal(b *codec.Builder) {
	b.AddUint16(x.Length)
	b.AddOpaque(x.Label)
	b.AddOpaque(x.Context)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *KDFLabel) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *KDFLabel) decode(d *decoder) bool {
	return readU16(d, &x.Length) && d.opaque(&x.Label) && d.opaque(&x.Context)
}

// --- RFC 9420, Section 5.3 ---

// Marshal encodes x. The body of a credential type other than basic and x509
// is Unknown as opaque data<V>. RFC 9420, Section 5.3.
func (x *Credential) Marshal(b *codec.Builder) {
	b.AddUint16(uint16(x.CredentialType))
	switch x.CredentialType {
	case CredentialTypeBasic:
		b.AddOpaque(x.Identity)
	case CredentialTypeX509:
		addOpaqueList(b, x.Certificates)
	default:
		b.AddOpaque(x.Unknown)
	}
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *Credential) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Credential) decode(d *decoder) bool {
	*x = Credential{}
	if !readU16(d, &x.CredentialType) {
		return false
	}
	switch x.CredentialType {
	case CredentialTypeBasic:
		return d.opaque(&x.Identity)
	case CredentialTypeX509:
		// Certificate certificates<V>; Certificate is struct { opaque cert_data<V>; }.
		return decodeOpaqueList(d, &x.Certificates)
	default:
		return d.opaque(&x.Unknown)
	}
}

// --- RFC 9420, Section 7.2 ---

// Marshal encodes x. RFC 9420, Section 7.2.
func (x *Capabilities) Marshal(b *codec.Builder) {
	addU16List(b, x.Versions)
	addU16List(b, x.CipherSuites)
	addU16List(b, x.Extensions)
	addU16List(b, x.Proposals)
	addU16List(b, x.Credentials)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *Capabilities) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Capabilities) decode(d *decoder) bool {
	return decodeU16List(d, &x.Versions) &&
		decodeU16List(d, &x.CipherSuites) &&
		decodeU16List(d, &x.Extensions) &&
		decodeU16List(d, &x.Proposals) &&
		decodeU16List(d, &x.Credentials)
}

// Marshal encodes x. RFC 9420, Section 7.2.
func (x *Lifetime) Marshal(b *codec.Builder) {
	b.AddUint64(x.NotBefore)
	b.AddUint64(x.NotAfter)
}

// Unmarshal decodes x from r.
func (x *Lifetime) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Lifetime) decode(d *decoder) bool {
	return d.u64(&x.NotBefore) && d.u64(&x.NotAfter)
}

// Marshal encodes x. RFC 9420, Section 7.2.
func (x *Extension) Marshal(b *codec.Builder) {
	b.AddUint16(uint16(x.ExtensionType))
	if x.Writer == nil {
		b.AddOpaque(x.ExtensionData)
		return
	}
	n := x.Writer.Len()
	if uint64(n) > codec.MaxVarint {
		b.SetError(errors.New("mls: extension data longer than 2^30-1 octets"))
		return
	}
	b.AddVarint(uint64(n))
	b.AddAppended(n, x.Writer.AppendTo)
}

// Unmarshal decodes x from r; x aliases r's input. Any extension type is
// accepted: extension_data is opaque<V>.
func (x *Extension) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Extension) decode(d *decoder) bool {
	return readU16(d, &x.ExtensionType) && d.opaque(&x.ExtensionData)
}

// --- Extension bodies: RFC 9420, Sections 5.3.3, 11.1, 12.1.8.1, 12.4.3.2 ---

// Marshal encodes x. RFC 9420, Section 5.3.3.
func (x *ApplicationID) Marshal(b *codec.Builder) { b.AddOpaque(x.ApplicationID) }

// Unmarshal decodes x from r; x aliases r's input.
func (x *ApplicationID) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *ApplicationID) decode(d *decoder) bool { return d.opaque(&x.ApplicationID) }

// Marshal encodes x. RFC 9420, Section 11.1.
func (x *RequiredCapabilities) Marshal(b *codec.Builder) {
	addU16List(b, x.ExtensionTypes)
	addU16List(b, x.ProposalTypes)
	addU16List(b, x.CredentialTypes)
}

// Unmarshal decodes x from r.
func (x *RequiredCapabilities) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *RequiredCapabilities) decode(d *decoder) bool {
	return decodeU16List(d, &x.ExtensionTypes) &&
		decodeU16List(d, &x.ProposalTypes) &&
		decodeU16List(d, &x.CredentialTypes)
}

// Marshal encodes x. RFC 9420, Section 12.1.8.1.
func (x *ExternalSender) Marshal(b *codec.Builder) {
	b.AddOpaque(x.SignatureKey)
	x.Credential.Marshal(b)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *ExternalSender) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *ExternalSender) decode(d *decoder) bool {
	return d.opaque(&x.SignatureKey) && x.Credential.decode(d)
}

// Marshal encodes x as ExternalSender external_senders<V>.
// RFC 9420, Section 12.1.8.1.
func (x *ExternalSenders) Marshal(b *codec.Builder) { addList(b, *x, (*ExternalSender).Marshal) }

// Unmarshal decodes x from r; x aliases r's input.
func (x *ExternalSenders) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *ExternalSenders) decode(d *decoder) bool {
	return decodeList(d, (*[]ExternalSender)(x), (*ExternalSender).decode)
}

// Marshal encodes x. RFC 9420, Section 12.4.3.2.
func (x *ExternalPub) Marshal(b *codec.Builder) { b.AddOpaque(x.ExternalPub) }

// Unmarshal decodes x from r; x aliases r's input.
func (x *ExternalPub) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *ExternalPub) decode(d *decoder) bool { return d.opaque(&x.ExternalPub) }
