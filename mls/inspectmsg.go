package mls

import (
	"bytes"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/wire"
)

// WireFormat is an MLSMessage's wire format (RFC 9420, Section 6).
type WireFormat uint16

// Wire formats (RFC 9420, Section 17.2).
const (
	WireFormatPublicMessage  = WireFormat(wire.WireFormatPublicMessage)
	WireFormatPrivateMessage = WireFormat(wire.WireFormatPrivateMessage)
	WireFormatWelcome        = WireFormat(wire.WireFormatWelcome)
	WireFormatGroupInfo      = WireFormat(wire.WireFormatGroupInfo)
	WireFormatKeyPackage     = WireFormat(wire.WireFormatKeyPackage)
)

// ContentType is a framed message's content type (RFC 9420, Section 6).
type ContentType uint8

// Content types (RFC 9420, Section 6).
const (
	ContentTypeApplication = ContentType(wire.ContentTypeApplication)
	ContentTypeProposal    = ContentType(wire.ContentTypeProposal)
	ContentTypeCommit      = ContentType(wire.ContentTypeCommit)
)

// MessageInfo is what anyone without the group's secrets can read from an
// MLSMessage: what RFC 9750, Section 8.4.3.2 lets a delivery service see.
// Nothing in it is authenticated: PublicGroup.Process and NewPublicGroup
// verify, InspectMessage only decodes.
type MessageInfo struct {
	WireFormat WireFormat
	// GroupID and Epoch: PublicMessage, PrivateMessage and GroupInfo.
	GroupID []byte
	Epoch   uint64
	// ContentType: PublicMessage and PrivateMessage.
	ContentType ContentType
	// Sender: PublicMessage only (a PrivateMessage encrypts it; Type is 0).
	Sender Sender
	// CipherSuite: Welcome, GroupInfo and KeyPackage.
	CipherSuite CipherSuite
	// KeyPackageRefs: the KeyPackageRefs a Welcome is encrypted to
	// (RFC 9420, Section 12.4.3.1), or a KeyPackage's own reference.
	KeyPackageRefs [][]byte
	// PathLeaf: a PublicMessage commit's new committer leaf (from its
	// UpdatePath), nil when it has none.
	PathLeaf *LeafInfo
}

// LeafInfo is the public identity of a leaf.
type LeafInfo struct {
	Credential   Credential
	SignatureKey []byte
}

// InspectMessage decodes an MLSMessage strictly (RFC 9420, Section 6; only
// mls10) and returns what can be read without keys. It verifies nothing.
// The MessageInfo holds copies of the few fields it returns, never the
// message's buffer: a server may keep it (or its GroupID) while the
// message, which may be megabytes, is long gone.
func InspectMessage(data []byte) (*MessageInfo, error) {
	// Decoded in place: every field returned below is copied out, and
	// nothing else of m outlives this call.
	m, err := wire.BorrowMLSMessage(data)
	if err != nil {
		return nil, err
	}
	info := &MessageInfo{WireFormat: WireFormat(m.WireFormat)}
	switch {
	case m.PublicMessage != nil:
		c := &m.PublicMessage.Content
		info.GroupID, info.Epoch, info.ContentType = bytes.Clone(c.GroupID), c.Epoch, ContentType(c.ContentType)
		info.Sender = senderFromWire(c.Sender)
		if c.Commit != nil && c.Commit.Path != nil {
			ln := &c.Commit.Path.LeafNode
			info.PathLeaf = &LeafInfo{Credential: cloneCredential(credentialFromWire(ln.Credential)), SignatureKey: bytes.Clone(ln.SignatureKey)}
		}
	case m.PrivateMessage != nil:
		p := m.PrivateMessage
		info.GroupID, info.Epoch, info.ContentType = bytes.Clone(p.GroupID), p.Epoch, ContentType(p.ContentType)
	case m.Welcome != nil:
		info.CipherSuite = CipherSuite(m.Welcome.CipherSuite)
		for _, s := range m.Welcome.Secrets {
			info.KeyPackageRefs = append(info.KeyPackageRefs, bytes.Clone(s.NewMember))
		}
	case m.GroupInfo != nil:
		gc := &m.GroupInfo.GroupContext
		info.GroupID, info.Epoch, info.CipherSuite = bytes.Clone(gc.GroupID), gc.Epoch, CipherSuite(gc.CipherSuite)
	case m.KeyPackage != nil:
		kp := keyPackageFromWire(m.KeyPackage)
		info.CipherSuite = kp.CipherSuite()
		if ref := kp.Ref(); ref != nil {
			info.KeyPackageRefs = [][]byte{ref}
		}
	}
	switch info.WireFormat {
	case WireFormatPublicMessage, WireFormatPrivateMessage:
		if info.ContentType < ContentTypeApplication || info.ContentType > ContentTypeCommit {
			return nil, invalid(ErrMalformed, "6", "content type %d", info.ContentType)
		}
	}
	return info, nil
}

func cloneCredential(c Credential) Credential {
	c.Identity, c.Data = bytes.Clone(c.Identity), bytes.Clone(c.Data)
	if c.Certificates != nil {
		certs := make([][]byte, len(c.Certificates))
		for i, x := range c.Certificates {
			certs[i] = bytes.Clone(x)
		}
		c.Certificates = certs
	}
	return c
}

// Bytes returns the credential's encoding (RFC 9420, Section 5.3), the form
// an authentication service validates.
func (c Credential) Bytes() []byte {
	w := c.toWire()
	out, _ := codec.Marshal(&w)
	return out
}

// Member returns the member at leaf l.
func (p *PublicGroup) Member(l LeafIndex) (Member, bool) { return p.g.Member(l) }

// CheckGroupInfo verifies that groupInfo (an MLSMessage) is a GroupInfo of
// the group in exactly the state p follows: its signature by its signer's
// leaf verifies, its ratchet tree (extension) is the group's, and its
// GroupContext equals p's (RFC 9420, Section 12.4.3). A delivery service
// uses it to publish only GroupInfo that matches what it validated.
func (p *PublicGroup) CheckGroupInfo(groupInfo []byte) error {
	v, err := verifyGroupInfo(p.g.cfg, groupInfo, nil)
	if err != nil {
		return classify(err)
	}
	ctx, err := codec.Marshal(&v.gi.GroupContext)
	if err != nil {
		return err
	}
	if !bytes.Equal(ctx, p.g.st.ctxBytes) {
		return classify(invalid(ErrInvalidWelcome, "12.4.3", "GroupInfo does not describe the group's current epoch"))
	}
	if !bytes.Equal(v.gi.ConfirmationTag, p.g.st.confTag) {
		return classify(invalid(ErrInvalidWelcome, "12.4.3", "GroupInfo confirmation tag differs from the last commit's"))
	}
	return nil
}
