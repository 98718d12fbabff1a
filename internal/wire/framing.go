package wire

import (
	"errors"

	"github.com/mlskit/mlskit/internal/codec"
)

// --- RFC 9420, Section 8.1 ---

// Marshal encodes x. RFC 9420, Section 8.1.
func (x *GroupContext) Marshal(b *codec.Builder) {
	b.AddUint16(uint16(x.Version))
	b.AddUint16(uint16(x.CipherSuite))
	b.AddOpaque(x.GroupID)
	b.AddUint64(x.Epoch)
	b.AddOpaque(x.TreeHash)
	b.AddOpaque(x.ConfirmedTranscriptHash)
	addExtensions(b, x.Extensions)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *GroupContext) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *GroupContext) decode(d *decoder) bool {
	return readU16(d, &x.Version) && readU16(d, &x.CipherSuite) && d.opaque(&x.GroupID) &&
		d.u64(&x.Epoch) && d.opaque(&x.TreeHash) && d.opaque(&x.ConfirmedTranscriptHash) &&
		decodeExtensions(d, &x.Extensions)
}

// --- RFC 9420, Section 6 ---

// Marshal encodes x. RFC 9420, Section 6.
func (x *Sender) Marshal(b *codec.Builder) {
	b.AddUint8(uint8(x.SenderType))
	switch x.SenderType {
	case SenderTypeMember:
		b.AddUint32(x.LeafIndex)
	case SenderTypeExternal:
		b.AddUint32(x.SenderIndex)
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		b.SetError(errUnknownSelect)
	}
}

// Unmarshal decodes x from r. An unknown sender type is malformed.
func (x *Sender) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *Sender) decode(d *decoder) bool {
	*x = Sender{}
	off := d.off
	if !readU8(d, &x.SenderType) {
		return false
	}
	switch x.SenderType {
	case SenderTypeMember:
		return d.u32(&x.LeafIndex)
	case SenderTypeExternal:
		return d.u32(&x.SenderIndex)
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
		return true
	}
	return d.errAt(off, "unknown sender type")
}

// marshalContentBody encodes the content_type select shared by FramedContent
// and PrivateMessageContent (RFC 9420, Sections 6 and 6.3.1).
func marshalContentBody(b *codec.Builder, ct ContentType, app []byte, p *Proposal, c *Commit) {
	switch ct {
	case ContentTypeApplication:
		b.AddOpaque(app)
	case ContentTypeProposal:
		if p == nil {
			b.SetError(errMissingBody)
			return
		}
		p.Marshal(b)
	case ContentTypeCommit:
		if c == nil {
			b.SetError(errMissingBody)
			return
		}
		c.Marshal(b)
	default:
		b.SetError(errUnknownSelect)
	}
}

func decodeContentBody(d *decoder, ct ContentType, app *[]byte, p **Proposal, c **Commit) bool {
	switch ct {
	case ContentTypeApplication:
		return d.opaque(app)
	case ContentTypeProposal:
		*p = new(Proposal)
		return (*p).decode(d)
	case ContentTypeCommit:
		*c = new(Commit)
		return (*c).decode(d)
	}
	return d.errAt(d.off, "unknown content type")
}

func validContentType(ct ContentType) bool {
	return ct >= ContentTypeApplication && ct <= ContentTypeCommit
}

// Marshal encodes x. RFC 9420, Section 6.
func (x *FramedContent) Marshal(b *codec.Builder) {
	x.MarshalHead(b)
	if x.receivedBody != nil {
		b.AddBytes(x.receivedBody)
		return
	}
	marshalContentBody(b, x.ContentType, x.ApplicationData, x.Proposal, x.Commit)
}

// SetReceivedBody records the encoding the body (the application_data,
// Proposal or Commit of the content_type select) was decoded from, so that
// Marshal copies it instead of encoding the body again. A receiver encodes
// the content it got twice, for the signature's FramedContentTBS and for
// the confirmed transcript hash (RFC 9420, Sections 6.1 and 8.2), and a
// commit on a sparse tree carries a ciphertext per member: the bytes as
// received are the ones that were signed. Set it only on a content whose
// body was decoded from raw (or, on the sending side, encoded to raw) and
// is not changed afterwards; copies of x carry it.
func (x *FramedContent) SetReceivedBody(raw []byte) { x.receivedBody = raw }

// ReceivedBody returns what SetReceivedBody recorded, or nil. The encoding
// of x is then MarshalHead's followed by these bytes, so a hash of x can
// be computed without copying them.
func (x *FramedContent) ReceivedBody() []byte { return x.receivedBody }

// MarshalHead encodes the fields of x before the body: group_id, epoch,
// sender, authenticated_data and content_type (RFC 9420, Section 6).
func (x *FramedContent) MarshalHead(b *codec.Builder) {
	b.AddOpaque(x.GroupID)
	b.AddUint64(x.Epoch)
	x.Sender.Marshal(b)
	b.AddOpaque(x.AuthenticatedData)
	b.AddUint8(uint8(x.ContentType))
}

// Unmarshal decodes x from r; x aliases r's input. An unknown content type
// is malformed.
func (x *FramedContent) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *FramedContent) decode(d *decoder) bool {
	*x = FramedContent{}
	if !(d.opaque(&x.GroupID) && d.u64(&x.Epoch) && x.Sender.decode(d) && d.opaque(&x.AuthenticatedData)) {
		return false
	}
	off := d.off
	if !readU8(d, &x.ContentType) {
		return false
	}
	if !validContentType(x.ContentType) {
		return d.errAt(off, "unknown content type")
	}
	return decodeContentBody(d, x.ContentType, &x.ApplicationData, &x.Proposal, &x.Commit)
}

// --- RFC 9420, Section 6.1 ---

// Marshal encodes x; ConfirmationTag is encoded only when x.ContentType is
// commit. RFC 9420, Section 6.1.
func (x *FramedContentAuthData) Marshal(b *codec.Builder) { marshalAuth(b, x, x.ContentType) }

func marshalAuth(b *codec.Builder, x *FramedContentAuthData, ct ContentType) {
	if !validContentType(ct) {
		b.SetError(errUnknownSelect)
		return
	}
	b.AddOpaque(x.Signature)
	if ct == ContentTypeCommit {
		b.AddOpaque(x.ConfirmationTag)
	}
}

// Unmarshal decodes x from r; x aliases r's input. x.ContentType must be
// set first: it decides whether a confirmation_tag follows the signature.
func (x *FramedContentAuthData) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *FramedContentAuthData) decode(d *decoder) bool { return decodeAuth(d, x, x.ContentType) }

func decodeAuth(d *decoder, x *FramedContentAuthData, ct ContentType) bool {
	*x = FramedContentAuthData{ContentType: ct}
	if !validContentType(ct) {
		return d.errAt(d.off, "unknown content type")
	}
	if !d.opaque(&x.Signature) {
		return false
	}
	if ct == ContentTypeCommit {
		return d.opaque(&x.ConfirmationTag)
	}
	return true
}

// senderHasContext reports whether FramedContentTBS carries the
// GroupContext for this sender type. RFC 9420, Section 6.1.
func senderHasContext(t SenderType) bool {
	return t == SenderTypeMember || t == SenderTypeNewMemberCommit
}

var errMissingContext = errors.New("mls: FramedContentTBS for a member or new_member_commit sender needs the GroupContext")

// Marshal encodes x. Context is encoded only for member and
// new_member_commit senders, and must then be set. RFC 9420, Section 6.1.
func (x *FramedContentTBS) Marshal(b *codec.Builder) {
	b.AddUint16(uint16(x.Version))
	b.AddUint16(uint16(x.WireFormat))
	x.Content.Marshal(b)
	if senderHasContext(x.Content.Sender.SenderType) {
		if x.Context == nil {
			b.SetError(errMissingContext)
			return
		}
		x.Context.Marshal(b)
	}
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *FramedContentTBS) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *FramedContentTBS) decode(d *decoder) bool {
	*x = FramedContentTBS{}
	if !(readU16(d, &x.Version) && readU16(d, &x.WireFormat) && x.Content.decode(d)) {
		return false
	}
	if senderHasContext(x.Content.Sender.SenderType) {
		x.Context = new(GroupContext)
		return x.Context.decode(d)
	}
	return true
}

// Marshal encodes x. RFC 9420, Section 6.
func (x *AuthenticatedContent) Marshal(b *codec.Builder) {
	b.AddUint16(uint16(x.WireFormat))
	x.Content.Marshal(b)
	marshalAuth(b, &x.Auth, x.Content.ContentType)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *AuthenticatedContent) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *AuthenticatedContent) decode(d *decoder) bool {
	*x = AuthenticatedContent{}
	start := d.b
	if !(readU16(d, &x.WireFormat) && x.Content.decode(d) && decodeAuth(d, &x.Auth, x.Content.ContentType)) {
		return false
	}
	x.raw = consumed(start, d)
	return true
}

// Raw returns the encoding x was decoded from, or nil if x was neither
// decoded nor obtained from a decoded PublicMessage. This is what a
// ProposalRef hashes (RFC 9420, Section 5.2). It is not updated when x's
// fields change.
func (x *AuthenticatedContent) Raw() []byte { return x.raw }

// TBS returns the FramedContentTBS that x's signature covers (RFC 9420,
// Section 6.1). ctx is used only for member and new_member_commit senders.
func (x *AuthenticatedContent) TBS(ctx *GroupContext) *FramedContentTBS {
	t := &FramedContentTBS{Version: ProtocolVersionMLS10, WireFormat: x.WireFormat, Content: x.Content}
	if senderHasContext(x.Content.Sender.SenderType) {
		t.Context = ctx
	}
	return t
}

// Marshal encodes x. RFC 9420, Section 6.2.
func (x *AuthenticatedContentTBM) Marshal(b *codec.Builder) {
	x.ContentTBS.Marshal(b)
	marshalAuth(b, &x.Auth, x.ContentTBS.Content.ContentType)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *AuthenticatedContentTBM) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *AuthenticatedContentTBM) decode(d *decoder) bool {
	return x.ContentTBS.decode(d) && decodeAuth(d, &x.Auth, x.ContentTBS.Content.ContentType)
}

// --- RFC 9420, Section 6.2 ---

// Marshal encodes x. MembershipTag is encoded only for member senders.
// RFC 9420, Section 6.2.
func (x *PublicMessage) Marshal(b *codec.Builder) {
	x.Content.Marshal(b)
	marshalAuth(b, &x.Auth, x.Content.ContentType)
	if x.Content.Sender.SenderType == SenderTypeMember {
		b.AddOpaque(x.MembershipTag)
	}
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *PublicMessage) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *PublicMessage) decode(d *decoder) bool {
	*x = PublicMessage{}
	start := d.b
	if !(x.Content.decode(d) && decodeAuth(d, &x.Auth, x.Content.ContentType)) {
		return false
	}
	x.contentRaw = consumed(start, d)
	if x.Content.Sender.SenderType == SenderTypeMember && !d.opaque(&x.MembershipTag) {
		return false
	}
	x.raw = consumed(start, d)
	return true
}

// Raw returns the encoding x was decoded from, or nil if x was not decoded.
// It is not updated when x's fields change.
func (x *PublicMessage) Raw() []byte { return x.raw }

// AuthenticatedContent returns the AuthenticatedContent x carries (wire
// format public_message). If x was decoded, the result's Raw is the
// received content and auth bytes behind the wire format, so proposal
// references hash exactly what arrived. RFC 9420, Sections 5.2 and 6.
func (x *PublicMessage) AuthenticatedContent() *AuthenticatedContent {
	ac := &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: x.Content, Auth: x.Auth}
	if x.contentRaw != nil {
		raw := make([]byte, 2, 2+len(x.contentRaw))
		raw[0], raw[1] = byte(WireFormatPublicMessage>>8), byte(WireFormatPublicMessage)
		ac.raw = append(raw, x.contentRaw...)
	}
	return ac
}

// --- RFC 9420, Section 6.3 ---

// Marshal encodes x. RFC 9420, Section 6.3.
func (x *PrivateMessage) Marshal(b *codec.Builder) {
	b.AddOpaque(x.GroupID)
	b.AddUint64(x.Epoch)
	b.AddUint8(uint8(x.ContentType))
	b.AddOpaque(x.AuthenticatedData)
	b.AddOpaque(x.EncryptedSenderData)
	b.AddOpaque(x.Ciphertext)
}

// Unmarshal decodes x from r; x aliases r's input. An unknown content type
// is malformed: it would make the ciphertext undecodable.
func (x *PrivateMessage) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *PrivateMessage) decode(d *decoder) bool {
	if !(d.opaque(&x.GroupID) && d.u64(&x.Epoch)) {
		return false
	}
	off := d.off
	if !readU8(d, &x.ContentType) {
		return false
	}
	if !validContentType(x.ContentType) {
		return d.errAt(off, "unknown content type")
	}
	return d.opaque(&x.AuthenticatedData) && d.opaque(&x.EncryptedSenderData) && d.opaque(&x.Ciphertext)
}

var errBadPadding = errors.New("mls: negative PrivateMessageContent padding")

// Marshal encodes x followed by x.Padding zero octets. RFC 9420, Section 6.3.1.
func (x *PrivateMessageContent) Marshal(b *codec.Builder) {
	marshalContentBody(b, x.ContentType, x.ApplicationData, x.Proposal, x.Commit)
	marshalAuth(b, &x.Auth, x.ContentType)
	if x.Padding < 0 {
		b.SetError(errBadPadding)
		return
	}
	b.AddBytes(make([]byte, x.Padding))
}

// Unmarshal decodes x from r, consuming all of r: everything after the auth
// data is padding, and a non-zero padding octet is malformed (RFC 9420,
// Section 6.3.1). x.ContentType must be set first, from
// PrivateMessage.content_type. x aliases r's input.
func (x *PrivateMessageContent) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *PrivateMessageContent) decode(d *decoder) bool {
	*x = PrivateMessageContent{ContentType: x.ContentType}
	if !validContentType(x.ContentType) {
		return d.errAt(d.off, "unknown content type")
	}
	if !decodeContentBody(d, x.ContentType, &x.ApplicationData, &x.Proposal, &x.Commit) ||
		!decodeAuth(d, &x.Auth, x.ContentType) {
		return false
	}
	for i, c := range d.b {
		if c != 0 {
			return d.errAt(d.off+i, "non-zero padding")
		}
	}
	x.Padding = len(d.b)
	d.off += len(d.b)
	d.b = d.b[len(d.b):]
	return true
}

// UnmarshalPrivateMessageContent decodes the plaintext of a PrivateMessage
// whose content_type is ct. It copies data once. RFC 9420, Section 6.3.1.
func UnmarshalPrivateMessageContent(data []byte, ct ContentType) (*PrivateMessageContent, error) {
	x := &PrivateMessageContent{ContentType: ct}
	if err := decodeAll(x, data, x.decode); err != nil {
		return nil, err
	}
	return x, nil
}

// Marshal encodes x. RFC 9420, Section 6.3.1.
func (x *PrivateContentAAD) Marshal(b *codec.Builder) {
	b.AddOpaque(x.GroupID)
	b.AddUint64(x.Epoch)
	b.AddUint8(uint8(x.ContentType))
	b.AddOpaque(x.AuthenticatedData)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *PrivateContentAAD) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *PrivateContentAAD) decode(d *decoder) bool {
	return d.opaque(&x.GroupID) && d.u64(&x.Epoch) && readU8(d, &x.ContentType) && d.opaque(&x.AuthenticatedData)
}

// Marshal encodes x. RFC 9420, Section 6.3.2.
func (x *SenderData) Marshal(b *codec.Builder) {
	b.AddUint32(x.LeafIndex)
	b.AddUint32(x.Generation)
	b.AddBytes(x.ReuseGuard[:])
}

// Unmarshal decodes x from r.
func (x *SenderData) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *SenderData) decode(d *decoder) bool {
	if !(d.u32(&x.LeafIndex) && d.u32(&x.Generation)) {
		return false
	}
	g, ok := d.take(4)
	if ok {
		copy(x.ReuseGuard[:], g)
	}
	return ok
}

// Marshal encodes x. RFC 9420, Section 6.3.2.
func (x *SenderDataAAD) Marshal(b *codec.Builder) {
	b.AddOpaque(x.GroupID)
	b.AddUint64(x.Epoch)
	b.AddUint8(uint8(x.ContentType))
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *SenderDataAAD) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *SenderDataAAD) decode(d *decoder) bool {
	return d.opaque(&x.GroupID) && d.u64(&x.Epoch) && readU8(d, &x.ContentType)
}

// --- RFC 9420, Section 8.2 ---

// Marshal encodes x. RFC 9420, Section 8.2.
func (x *ConfirmedTranscriptHashInput) Marshal(b *codec.Builder) {
	b.AddUint16(uint16(x.WireFormat))
	x.Content.Marshal(b)
	b.AddOpaque(x.Signature)
}

// Unmarshal decodes x from r; x aliases r's input.
func (x *ConfirmedTranscriptHashInput) Unmarshal(r *codec.Reader) bool {
	return unmarshalFrom(r, x.decode)
}

func (x *ConfirmedTranscriptHashInput) decode(d *decoder) bool {
	return readU16(d, &x.WireFormat) && x.Content.decode(d) && d.opaque(&x.Signature)
}

// Marshal encodes x. RFC 9420, Section 8.2.
func (x *InterimTranscriptHashInput) Marshal(b *codec.Builder) { b.AddOpaque(x.ConfirmationTag) }

// Unmarshal decodes x from r; x aliases r's input.
func (x *InterimTranscriptHashInput) Unmarshal(r *codec.Reader) bool {
	return unmarshalFrom(r, x.decode)
}

func (x *InterimTranscriptHashInput) decode(d *decoder) bool { return d.opaque(&x.ConfirmationTag) }
