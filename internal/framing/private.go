package framing

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// reuseGuardSize is the length of SenderData.reuse_guard (RFC 9420,
// Section 6.3.2).
const reuseGuardSize = 4

// ProtectPrivate encrypts a signed AuthenticatedContent as a PrivateMessage
// (RFC 9420, Section 6.3). It takes the next generation of the sender's
// handshake or application ratchet from e.Tree, XORs a fresh reuse guard
// read from rand into the first four bytes of the nonce (Section 6.3.1),
// appends padding zero octets to the PrivateMessageContent, encrypts it
// with PrivateContentAAD, and encrypts the SenderData with the key and nonce
// derived from sender_data_secret and the ciphertext sample (Section 6.3.2).
//
// The sender must be a member (Section 6.3.2) and ac must have been signed
// for the private_message wire format.
func (e *Epoch) ProtectPrivate(ac *wire.AuthenticatedContent, padding int, rand io.Reader) (*wire.PrivateMessage, error) {
	return e.ProtectPrivatePadded(ac, func(int) int { return padding }, rand)
}

// ProtectPrivatePadded is ProtectPrivate with the padding chosen by pad,
// from the length of the PrivateMessageContent before padding: the content
// is encoded once, and its padding appended. It is ProtectPrivateMessage's
// message, decoded.
func (e *Epoch) ProtectPrivatePadded(ac *wire.AuthenticatedContent, pad func(contentSize int) int, rand io.Reader) (*wire.PrivateMessage, error) {
	msg, err := e.ProtectPrivateMessage(ac, pad, rand)
	if err != nil {
		return nil, err
	}
	m, err := wire.UnmarshalMLSMessage(msg)
	if err != nil {
		return nil, err
	}
	return m.PrivateMessage, nil
}

// senderDataSize is the length of an encoded SenderData: leaf_index,
// generation and reuse_guard (RFC 9420, Section 6.3.2).
const senderDataSize = 4 + 4 + reuseGuardSize

// ProtectPrivateMessage is ProtectPrivatePadded returning the
// PrivateMessage encoded as an MLSMessage (RFC 9420, Section 6), made in
// one buffer. The PrivateMessageContent is encoded, padded and sealed in
// place where the ciphertext goes, and the fields before it are written in
// front of it. PrivateMessage starts with the fields of PrivateContentAAD
// (group_id, epoch, content_type, authenticated_data), and SenderDataAAD
// is their first three (Sections 6.3.1 and 6.3.2), so both AEADs read
// their associated data from the message itself; the encrypted SenderData
// (always senderDataSize octets and a tag) is sealed last, into the room
// kept for it, because its key comes from the ciphertext.
func (e *Epoch) ProtectPrivateMessage(ac *wire.AuthenticatedContent, pad func(contentSize int) int, rand io.Reader) ([]byte, error) {
	if err := e.checkOutgoing(ac, wire.WireFormatPrivateMessage); err != nil {
		return nil, err
	}
	if e.Tree == nil || len(e.SenderDataSecret) == 0 {
		return nil, errors.New("mls: framing.Epoch needs a secret tree and a sender_data_secret for PrivateMessage")
	}
	c := &ac.Content
	if c.Sender.SenderType != wire.SenderTypeMember {
		return nil, errors.New("mls: only members send PrivateMessages (RFC 9420, Section 6.3.2)")
	}
	if pad == nil {
		return nil, errors.New("mls: ProtectPrivatePadded needs a padding rule")
	}
	kind, ok := secrettree.KindOf(c.ContentType)
	if !ok {
		return nil, fmt.Errorf("mls: cannot protect content of type %v", c.ContentType)
	}
	if rand == nil {
		return nil, errors.New("mls: ProtectPrivate needs a source of randomness")
	}
	// The content and the guard before taking a generation, so that a
	// content that cannot be encoded, a negative padding or a failing rand
	// does not burn one.
	l, err := e.layOutPrivate(ac, pad)
	if err != nil {
		return nil, err
	}
	var guard [reuseGuardSize]byte
	if _, err := io.ReadFull(rand, guard[:]); err != nil {
		clear(l.buf)
		return nil, fmt.Errorf("mls: reading the reuse guard: %w", err)
	}
	generation, key, nonce, err := e.Tree.Next(treemath.LeafIndex(c.Sender.LeafIndex), kind)
	if err != nil {
		clear(l.buf)
		return nil, fmt.Errorf("mls: secret tree: %w", err)
	}
	defer key.Erase()
	defer nonce.Erase()
	return e.sealPrivate(ac, l, generation, key, nonce, guard)
}

// A privateLayout is a PrivateMessage being made in one buffer: room
// octets for the fields before the ciphertext, then the padded content.
type privateLayout struct {
	buf      []byte // room, then the padded PrivateMessageContent
	room     int
	aadLen   int // PrivateContentAAD's fields
	sdAADLen int // SenderDataAAD's: the first three
}

// layOutPrivate encodes ac's PrivateMessageContent after the room the
// other fields of the message need and appends the zero octets pad asks
// for, given the unpadded length (RFC 9420, Section 6.3.1).
func (e *Epoch) layOutPrivate(ac *wire.AuthenticatedContent, pad func(contentSize int) int) (*privateLayout, error) {
	c := &ac.Content
	gid, ad := c.GroupID, c.AuthenticatedData
	if len(gid) > codec.MaxVarint || len(ad) > codec.MaxVarint {
		return nil, errors.New("mls: group_id or authenticated_data longer than 2^30-1 octets")
	}
	l := &privateLayout{sdAADLen: codec.VarintLen(uint64(len(gid))) + len(gid) + 8 + 1}
	l.aadLen = l.sdAADLen + codec.VarintLen(uint64(len(ad))) + len(ad)
	// The MLSMessage header, the PrivateContentAAD's fields, the encrypted
	// SenderData (shorter than 64 octets: a one-octet length) and the
	// longest length of the ciphertext.
	l.room = 4 + l.aadLen + 1 + senderDataSize + e.Suite.AEADOverhead() + 4
	pmc := wire.PrivateMessageContent{
		ContentType:     c.ContentType,
		ApplicationData: c.ApplicationData,
		Proposal:        c.Proposal,
		Commit:          c.Commit,
		Auth:            ac.Auth,
	}
	pmc.Auth.ContentType = c.ContentType
	// 256: the signature (up to 132 octets, P-521), a confirmation tag,
	// their lengths, a padding block and the tag; a content that needs
	// more (a commit being sent) grows the buffer.
	b := codec.NewBuilder(make([]byte, l.room, l.room+bodySizeHint(c)+256))
	pmc.Marshal(b)
	buf, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: encoding PrivateMessageContent: %w", err)
	}
	padding := pad(len(buf) - l.room)
	if padding < 0 {
		clear(buf)
		return nil, errors.New("mls: negative padding")
	}
	buf = append(buf, make([]byte, padding)...)
	if len(buf)-l.room+e.Suite.AEADOverhead() > codec.MaxVarint {
		clear(buf)
		return nil, errors.New("mls: PrivateMessage ciphertext longer than 2^30-1 octets")
	}
	l.buf = slices.Grow(buf, e.Suite.AEADOverhead()) // the tag, sealed in place
	return l, nil
}

// sealPrivate finishes the PrivateMessage laid out in l with the given
// generation, key, nonce and reuse guard and returns it as an MLSMessage.
// It modifies nonce.
func (e *Epoch) sealPrivate(ac *wire.AuthenticatedContent, l *privateLayout, generation uint32,
	key, nonce keyschedule.Secret, guard [reuseGuardSize]byte) ([]byte, error) {
	s := e.Suite
	c := &ac.Content
	buf, room := l.buf, l.room
	ptLen := len(buf) - room
	ctLen := ptLen + s.AEADOverhead()
	esdLen := senderDataSize + s.AEADOverhead()

	// The fields before the ciphertext, written so that they end where it
	// starts (its length takes one, two or four octets).
	// The PrivateContentAAD's fields are encoded by wire, as the receiver
	// encodes them to open the message.
	start := room - codec.VarintLen(uint64(ctLen)) - 1 - esdLen - l.aadLen - 4
	b := codec.NewBuilder(buf[start:start]) // in place: room holds it all
	b.AddUint16(uint16(wire.ProtocolVersionMLS10))
	b.AddUint16(uint16(wire.WireFormatPrivateMessage))
	(&wire.PrivateContentAAD{GroupID: c.GroupID, Epoch: c.Epoch, ContentType: c.ContentType,
		AuthenticatedData: c.AuthenticatedData}).Marshal(b)
	b.AddVarint(uint64(esdLen))
	p, err := b.Bytes()
	if err != nil || len(p) != 4+l.aadLen+1 {
		return nil, errors.New("mls: PrivateMessage layout") // unreachable: the lengths above
	}
	esdAt := start + len(p)
	p = codec.AppendVarint(p[:len(p)+esdLen], uint64(ctLen), nil)
	if start+len(p) != room {
		return nil, errors.New("mls: PrivateMessage layout") // unreachable: the lengths above
	}
	aad := buf[start+4 : start+4+l.aadLen]

	applyReuseGuard(nonce, guard)
	ct, err := s.SealAppend(buf[room:room], key, nonce, aad, buf[room:])
	if err != nil {
		clear(buf)
		return nil, fmt.Errorf("mls: encrypting PrivateMessageContent: %w", err)
	}

	// Section 6.3.2: the sender data, under a key and nonce derived from
	// the ciphertext sample.
	sd, err := codec.Marshal(&wire.SenderData{LeafIndex: c.Sender.LeafIndex, Generation: generation, ReuseGuard: guard})
	if err != nil || len(sd) != senderDataSize {
		return nil, errors.New("mls: encoding SenderData") // unreachable: fixed-size fields
	}
	sdKey, sdNonce := keyschedule.SenderDataKeyNonce(s, e.SenderDataSecret, ct)
	defer sdKey.Erase()
	defer sdNonce.Erase()
	if _, err := s.SealAppend(buf[esdAt:esdAt], sdKey, sdNonce, aad[:l.sdAADLen], sd); err != nil {
		return nil, fmt.Errorf("mls: encrypting SenderData: %w", err)
	}
	return buf[start : room+len(ct)], nil
}

// UnprotectPrivate decrypts and checks a PrivateMessage and returns the
// AuthenticatedContent it carries (RFC 9420, Section 6.3), in this order:
//
//  1. group_id and epoch are the group's (ErrWrongGroup, ErrWrongEpoch);
//  2. the SenderData decrypts with the key and nonce derived from
//     sender_data_secret and the ciphertext sample (ErrDecrypt, Section 6.3.2);
//  3. its leaf_index is a member: members knows it (ErrUnknownSender);
//  4. the secret tree yields that generation's key and nonce, consuming them
//     (ErrKeyReused, ErrGenerationTooOld, ErrGenerationTooFarAhead);
//  5. the content decrypts with the nonce XORed with the reuse guard and
//     PrivateContentAAD (ErrDecrypt, Section 6.3.1);
//  6. the PrivateMessageContent decodes for pm's content_type and its
//     padding is all zero (*wire.DecodeError, ErrBadPadding);
//  7. the signature verifies with the member's signature key
//     (ErrInvalidSignature, Section 6.1).
//
// For a commit, the confirmation_tag is carried but not checked (see
// UnprotectPublic).
//
// The content is decrypted in place: once step 5 has run, pm.Ciphertext
// holds the plaintext (or zeros), and the returned content aliases it. Pass
// a PrivateMessage decoded from bytes the caller owns (wire's Unmarshal
// functions copy them), and unprotect it once.
func (e *Epoch) UnprotectPrivate(pm *wire.PrivateMessage, members MemberKeys) (*wire.AuthenticatedContent, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	if pm == nil {
		return nil, errors.New("mls: nil PrivateMessage")
	}
	if e.Tree == nil || len(e.SenderDataSecret) == 0 {
		return nil, errors.New("mls: framing.Epoch needs a secret tree and a sender_data_secret for PrivateMessage")
	}
	if members == nil {
		return nil, errors.New("mls: UnprotectPrivate needs a MemberKeys lookup")
	}
	s := e.Suite
	if err := checkGroupEpoch(e.Context, pm.GroupID, pm.Epoch); err != nil {
		return nil, err
	}
	kind, ok := secrettree.KindOf(pm.ContentType)
	if !ok {
		return nil, &wire.DecodeError{Type: "PrivateMessage", Reason: "unknown content type"}
	}

	// RFC 9420, Section 6.3.2: sender data.
	sdAAD, err := codec.Marshal(&wire.SenderDataAAD{GroupID: pm.GroupID, Epoch: pm.Epoch, ContentType: pm.ContentType})
	if err != nil {
		return nil, fmt.Errorf("mls: encoding SenderDataAAD: %w", err)
	}
	sdKey, sdNonce := keyschedule.SenderDataKeyNonce(s, e.SenderDataSecret, pm.Ciphertext)
	sdBytes, err := s.Open(sdKey, sdNonce, sdAAD, pm.EncryptedSenderData)
	sdKey.Erase()
	sdNonce.Erase()
	if err != nil {
		return nil, invalidCause(ErrDecrypt, "sender data decrypts", "6.3.2", err)
	}
	sd, err := wire.UnmarshalSenderData(sdBytes)
	if err != nil {
		return nil, err
	}
	// The leaf must be a non-blank leaf of the tree; check before the
	// secret tree consumes a key for it.
	pub, ok := members(sd.LeafIndex)
	if !ok {
		return nil, invalid(ErrUnknownSender, "sender data leaf_index is a member", "6.3.2")
	}

	// RFC 9420, Sections 6.3.1 and 9: the content key and nonce. Peek
	// first and consume the key only once the message has decrypted and
	// its signature verified, so a forged or corrupted message leaves the
	// secret tree exactly as it was.
	leaf := treemath.LeafIndex(sd.LeafIndex)
	key, nonce, err := e.Tree.Peek(leaf, kind, sd.Generation)
	if err != nil {
		return nil, treeError(err)
	}
	defer key.Erase()
	defer nonce.Erase()
	applyReuseGuard(nonce, sd.ReuseGuard)
	aad, err := codec.Marshal(&wire.PrivateContentAAD{
		GroupID: pm.GroupID, Epoch: pm.Epoch, ContentType: pm.ContentType, AuthenticatedData: pm.AuthenticatedData,
	})
	if err != nil {
		return nil, fmt.Errorf("mls: encoding PrivateContentAAD: %w", err)
	}
	// In place: pm's bytes are the decoder's own copy of the message, and
	// a commit to a sparse tree is as large as the group.
	plaintext, err := s.OpenInPlace(key, nonce, aad, pm.Ciphertext)
	if err != nil {
		return nil, invalidCause(ErrDecrypt, "content decrypts", "6.3.1", err)
	}
	pmc, err := decodeContent(plaintext, pm.ContentType)
	if err != nil {
		return nil, err
	}

	ac := &wire.AuthenticatedContent{
		WireFormat: wire.WireFormatPrivateMessage,
		Content: wire.FramedContent{
			GroupID:           pm.GroupID,
			Epoch:             pm.Epoch,
			Sender:            wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: sd.LeafIndex},
			AuthenticatedData: pm.AuthenticatedData,
			ContentType:       pm.ContentType,
			ApplicationData:   pmc.ApplicationData,
			Proposal:          pmc.Proposal,
			Commit:            pmc.Commit,
		},
		Auth: pmc.Auth,
	}
	keepReceivedBody(&ac.Content)
	// RFC 9420, Section 6.3.1: "the application MUST check that the
	// FramedContentAuthData is valid" before the content is used.
	if err := Verify(s, pub, ac, e.Context); err != nil {
		return nil, err
	}
	k2, n2, err := e.Tree.Get(leaf, kind, sd.Generation)
	if err != nil {
		return nil, treeError(err)
	}
	k2.Erase()
	n2.Erase()
	return ac, nil
}

// applyReuseGuard XORs the reuse guard into the first four bytes of nonce
// (RFC 9420, Section 6.3.1).
func applyReuseGuard(nonce []byte, guard [reuseGuardSize]byte) {
	for i := range guard {
		nonce[i] ^= guard[i]
	}
}

// decodeContent decodes a PrivateMessageContent of content type ct
// (RFC 9420, Section 6.3.1). Unlike wire.UnmarshalPrivateMessageContent it
// tells a non-zero padding octet (ErrBadPadding, still matching
// codec.ErrMalformed) apart from an undecodable content.
func decodeContent(plaintext []byte, ct wire.ContentType) (*wire.PrivateMessageContent, error) {
	x := &wire.PrivateMessageContent{ContentType: ct}
	r := codec.NewReader(plaintext)
	var ok bool
	switch ct {
	case wire.ContentTypeApplication:
		ok = r.ReadOpaque(&x.ApplicationData)
	case wire.ContentTypeProposal:
		x.Proposal = new(wire.Proposal)
		ok = x.Proposal.Unmarshal(r)
	case wire.ContentTypeCommit:
		x.Commit = new(wire.Commit)
		ok = x.Commit.Unmarshal(r)
	}
	if ok {
		x.Auth.ContentType = ct
		ok = x.Auth.Unmarshal(r)
	}
	if !ok {
		return nil, &wire.DecodeError{Type: "PrivateMessageContent", Offset: r.Offset()}
	}
	// RFC 9420, Section 6.3.1: everything after auth is padding and MUST
	// be all zero, or the message is rejected as malformed.
	for _, b := range r.Rest() {
		if b != 0 {
			return nil, invalidCause(ErrBadPadding, "padding is all zero", "6.3.1", codec.ErrMalformed)
		}
	}
	x.Padding = r.Len()
	return x, nil
}
