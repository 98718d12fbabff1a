package framing

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// Labels of RFC 9420 used by this package (Sections 5.1.2, 5.1.3, 5.2).
const (
	labelFramedContentTBS = "FramedContentTBS"
	labelGroupInfoTBS     = "GroupInfoTBS"
	labelWelcome          = "Welcome"
	labelKeyPackageRef    = "MLS 1.0 KeyPackage Reference"
)

// MemberKeys returns the signature public key of the member at leaf in the
// epoch's ratchet tree, and false when that leaf is blank or outside the tree.
// The group state machine supplies it (typically a method value of its
// ratchet tree); framing never needs more of the tree than this.
type MemberKeys func(leaf uint32) (signatureKey []byte, ok bool)

// Sign builds the AuthenticatedContent of content for wire format wf and
// signs it with SignWithLabel(., "FramedContentTBS", FramedContentTBS)
// (RFC 9420, Section 6.1). ctx is the current GroupContext; it is covered by
// the signature for member and new_member_commit senders and ignored
// otherwise (it may be nil for external and new_member_proposal senders).
//
// For a commit the confirmation_tag is left empty: it is a MAC over the
// confirmed transcript hash, which covers the signature (Section 8.2), so
// the caller computes it afterwards and sets ac.Auth.ConfirmationTag before
// protecting the message.
func Sign(signer suite.Signer, wf wire.WireFormat, content *wire.FramedContent, ctx *wire.GroupContext) (*wire.AuthenticatedContent, error) {
	if signer == nil || content == nil {
		return nil, errors.New("mls: Sign needs a signer and a content")
	}
	if wf != wire.WireFormatPublicMessage && wf != wire.WireFormatPrivateMessage {
		return nil, fmt.Errorf("mls: cannot sign content for wire format %v", wf)
	}
	if !content.ContentType.Known() {
		return nil, fmt.Errorf("mls: cannot sign content of type %v", content.ContentType)
	}
	ac := &wire.AuthenticatedContent{
		WireFormat: wf,
		Content:    *content,
		Auth:       wire.FramedContentAuthData{ContentType: content.ContentType},
	}
	if needsContext(ac.Content.Sender.SenderType) && ctx == nil {
		return nil, errMissingContext
	}
	sc, bp, err := layOutPooled(labelFramedContentTBS, bodySizeHint(&ac.Content), ac.TBS(ctx).Marshal)
	if err != nil {
		return nil, err
	}
	sig, err := sc.sign(signer)
	sc.release(bp)
	if err != nil {
		return nil, fmt.Errorf("mls: signing FramedContentTBS: %w", err)
	}
	ac.Auth.Signature = sig
	return ac, nil
}

// Verify checks ac's signature with the sender's signature public key pub
// (RFC 9420, Section 6.1). ctx is the current GroupContext, required for
// member and new_member_commit senders.
func Verify(s *suite.Suite, pub []byte, ac *wire.AuthenticatedContent, ctx *wire.GroupContext) error {
	if needsContext(ac.Content.Sender.SenderType) && ctx == nil {
		return errMissingContext
	}
	sc, bp, err := layOutPooled(labelFramedContentTBS, bodySizeHint(&ac.Content), ac.TBS(ctx).Marshal)
	if err != nil {
		return invalidCause(ErrInvalidSignature, "FramedContent signature", "6.1", err)
	}
	defer sc.release(bp)
	if err := s.VerifySignContent(pub, sc.signContent(), ac.Auth.Signature); err != nil {
		return invalidCause(ErrInvalidSignature, "FramedContent signature", "6.1", err)
	}
	return nil
}

var errMissingContext = errors.New("mls: the FramedContentTBS of a member or new_member_commit sender needs the GroupContext")

// A laidOut is SignContent{"MLS 1.0 "+label, content} (RFC 9420, Section
// 5.1.2) built in one buffer: the content is encoded after room for the
// SignContent header, which is then written just before it. The content
// (a commit with a ciphertext per member, a GroupInfo with the whole tree)
// is encoded once and never copied to be signed or verified; the room can
// then take another header (SignGroupInfoMessage's MLSMessage header).
type laidOut struct {
	buf   []byte // room, then the content
	room  int    // where the content starts
	start int    // where the SignContent starts
	label string
}

// signBufs holds the buffers Sign and Verify lay FramedContentTBS out in,
// for as long as they sign or verify: a commit to a sparse tree of n
// members is about 83n bytes, and every message sent or received would
// otherwise allocate, zero and leave for the collector one as large as its
// content. Each is cleared before it goes back: it holds the content, an
// application message's plaintext included.
var signBufs sync.Pool // of *[]byte

// layOutPooled is layOutSignContentIn in a buffer from signBufs. The caller
// hands it back with release once done with the SignContent.
func layOutPooled(label string, sizeHint int, marshal func(*codec.Builder)) (*laidOut, *[]byte, error) {
	bp, _ := signBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	sc, err := layOutSignContentIn(*bp, label, sizeHint, marshal)
	if err != nil {
		clear((*bp)[:cap(*bp)]) // what the encoding wrote before it failed
		signBufs.Put(bp)
		return nil, nil, err
	}
	return sc, bp, nil
}

// release clears l's buffer and returns it to signBufs as bp.
func (l *laidOut) release(bp *[]byte) {
	clear(l.buf)
	*bp = l.buf[:0]
	signBufs.Put(bp)
}

// layOutSignContentIn encodes a content with marshal (sizeHint: its
// expected length) and writes the SignContent header before it, in buf's
// storage when it holds the expected length. A buffer that is too small for a caller that passed
// one (non-nil: it keeps buffers for reuse) is replaced by one an eighth
// larger than needed, so that a content that grows a little from one use
// to the next (a GroupInfo whose tree gained a member) still fits.
func layOutSignContentIn(buf []byte, label string, sizeHint int, marshal func(*codec.Builder)) (*laidOut, error) {
	room := suite.SignContentHeaderSize(label, codec.MaxVarint)
	if c := room + sizeHint + 1024; cap(buf) < c {
		if buf != nil {
			c += c / 8
		}
		buf = make([]byte, room, c)
	} else {
		buf = buf[:room]
	}
	b := codec.NewBuilder(buf)
	marshal(b)
	buf, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	n := len(buf) - room
	if n > codec.MaxVarint {
		return nil, errors.New("mls: content to sign longer than 2^30-1 bytes")
	}
	start := room - suite.SignContentHeaderSize(label, n)
	suite.AppendSignContentHeader(buf[start:start], label, n) // in place, ending at room
	return &laidOut{buf: buf, room: room, start: start, label: label}, nil
}

func (l *laidOut) content() []byte     { return l.buf[l.room:] }
func (l *laidOut) signContent() []byte { return l.buf[l.start:] }

// sign signs the SignContent in place when signer can (suite.ContentSigner),
// else through SignWithLabel, which copies the content.
func (l *laidOut) sign(signer suite.Signer) ([]byte, error) {
	if cs, ok := signer.(suite.ContentSigner); ok {
		return cs.SignSignContent(l.signContent())
	}
	return signer.SignWithLabel(l.label, l.content())
}

// bodySizeHint is the length of c's body as received, or a guess.
func bodySizeHint(c *wire.FramedContent) int {
	if b := c.ReceivedBody(); b != nil {
		return len(b)
	}
	return len(c.ApplicationData)
}

// keepReceivedBody has c's encodings (the signature's FramedContentTBS,
// the membership tag's input, the confirmed transcript hash) copy the
// decoded Commit or Proposal's bytes as received instead of encoding it
// again: a commit on a sparse tree carries a ciphertext per member, and
// those bytes are what the sender signed (RFC 9420, Sections 6.1 and 8.2).
func keepReceivedBody(c *wire.FramedContent) {
	switch {
	case c.ContentType == wire.ContentTypeCommit && c.Commit != nil && c.Commit.Raw() != nil:
		c.SetReceivedBody(c.Commit.Raw())
	case c.ContentType == wire.ContentTypeProposal && c.Proposal != nil && c.Proposal.Raw() != nil:
		c.SetReceivedBody(c.Proposal.Raw())
	}
}

// needsContext reports whether FramedContentTBS covers the GroupContext for
// this sender type (RFC 9420, Section 6.1).
func needsContext(t wire.SenderType) bool {
	return t == wire.SenderTypeMember || t == wire.SenderTypeNewMemberCommit
}

// senderKey finds the signature public key that must verify content's
// signature, and checks that the sender type may send this content
// (RFC 9420, Sections 6.1 and 12.1.8):
//
//   - member: the LeafNode at leaf_index (looked up with members);
//   - external: content_type proposal of a type external senders may send,
//     key at sender_index of the external_senders extension of ctx;
//   - new_member_commit: content_type commit, key in the Commit's path;
//   - new_member_proposal: an Add proposal, key in its KeyPackage's LeafNode.
func senderKey(ctx *wire.GroupContext, content *wire.FramedContent, members MemberKeys) ([]byte, error) {
	sender := content.Sender
	switch sender.SenderType {
	case wire.SenderTypeMember:
		if members == nil {
			return nil, errors.New("mls: no MemberKeys lookup for a member sender")
		}
		pub, ok := members(sender.LeafIndex)
		if !ok {
			return nil, invalid(ErrUnknownSender, "member sender's leaf is not blank", "6.1")
		}
		return pub, nil

	case wire.SenderTypeExternal:
		if content.ContentType != wire.ContentTypeProposal || content.Proposal == nil {
			return nil, invalid(ErrInvalidSender, "external sender sends only proposals", "6.1")
		}
		if !externalAllowed(content.Proposal.ProposalType) {
			return nil, invalid(ErrInvalidSender, "proposal type allowed for external senders", "12.1.8")
		}
		return externalSenderKey(ctx, sender.SenderIndex)

	case wire.SenderTypeNewMemberCommit:
		if content.ContentType != wire.ContentTypeCommit || content.Commit == nil {
			return nil, invalid(ErrInvalidSender, "new_member_commit sender sends only commits", "6.1")
		}
		// An external commit MUST carry a path (Section 12.4.3.2); its
		// LeafNode holds the joiner's signature key.
		if content.Commit.Path == nil {
			return nil, invalid(ErrInvalidSender, "external commit has a path", "12.4.3.2")
		}
		return content.Commit.Path.LeafNode.SignatureKey, nil

	case wire.SenderTypeNewMemberProposal:
		if content.ContentType != wire.ContentTypeProposal || content.Proposal == nil ||
			content.Proposal.ProposalType != wire.ProposalTypeAdd || content.Proposal.Add == nil {
			return nil, invalid(ErrInvalidSender, "new_member_proposal sender sends only Add proposals", "6.1")
		}
		return content.Proposal.Add.KeyPackage.LeafNode.SignatureKey, nil
	}
	return nil, invalid(ErrInvalidSender, "known sender type", "6")
}

// externalAllowed reports whether an external sender may send a proposal of
// type t (RFC 9420, Section 12.1.8: add, remove, psk, reinit and
// group_context_extensions; "Ext" in the registry, Section 17.4). Types this
// package does not know are let through: their defining documents say
// whether external senders may send them, and the group layer decides.
func externalAllowed(t wire.ProposalType) bool {
	switch t {
	case wire.ProposalTypeUpdate, wire.ProposalTypeExternalInit:
		return false
	}
	return true
}

// externalSenderKey returns the signature key at index in the
// external_senders extension of ctx (RFC 9420, Section 12.1.8.1).
func externalSenderKey(ctx *wire.GroupContext, index uint32) ([]byte, error) {
	if ctx == nil {
		return nil, errors.New("mls: no GroupContext to find external senders in")
	}
	for _, ext := range ctx.Extensions {
		if ext.ExtensionType != wire.ExtensionTypeExternalSenders {
			continue
		}
		senders, err := wire.Decode[wire.ExternalSenders](ext.ExtensionData)
		if err != nil {
			return nil, fmt.Errorf("mls: the group's external_senders extension: %w", err)
		}
		if uint64(index) >= uint64(len(*senders)) {
			return nil, invalid(ErrUnknownSender, "sender_index names an external sender", "12.1.8.1")
		}
		return (*senders)[index].SignatureKey, nil
	}
	return nil, invalid(ErrUnknownSender, "group has an external_senders extension", "12.1.8")
}

// checkGroupEpoch checks that a message is for the group and epoch of ctx
// (RFC 9420, Sections 12.4.2 and 15: the group_id and epoch say which
// group secrets apply).
func checkGroupEpoch(ctx *wire.GroupContext, groupID []byte, epoch uint64) error {
	if !bytes.Equal(groupID, ctx.GroupID) {
		return invalid(ErrWrongGroup, "group_id is the group's", "6")
	}
	if epoch != ctx.Epoch {
		return invalid(ErrWrongEpoch, "epoch is the current epoch", "12.4.2")
	}
	return nil
}
