package mls

import (
	"bytes"
	"errors"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// wireFormat is how this group sends handshakes.
func (g *Group) handshakeWireFormat() wire.WireFormat {
	if g.cfg.orDefault().PublicHandshakes {
		return wire.WireFormatPublicMessage
	}
	return wire.WireFormatPrivateMessage
}

func (g *Group) checkCanSend() error {
	if g.removed {
		return ErrRemoved
	}
	if g.st.reinit != nil {
		return ErrGroupInactive
	}
	return nil
}

// Encrypt protects an application message as a PrivateMessage (RFC 9420,
// Sections 6.3 and 14) with optional authenticated (unencrypted) data and
// returns the encoded MLSMessage.
//
// It fails with ErrPendingProposals while proposals received in this epoch
// are uncommitted (Section 12.4: a member that has observed proposals must
// commit before sending application data).
func (g *Group) Encrypt(plaintext, authenticatedData []byte) ([]byte, error) {
	if err := g.checkCanSend(); err != nil {
		return nil, err
	}
	for _, p := range g.st.proposals {
		if !p.own {
			return nil, ErrPendingProposals
		}
	}
	content := &wire.FramedContent{
		GroupID:           g.st.ctx.GroupID,
		Epoch:             g.st.ctx.Epoch,
		Sender:            wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: uint32(g.st.me)},
		AuthenticatedData: authenticatedData,
		ContentType:       wire.ContentTypeApplication,
		ApplicationData:   plaintext,
	}
	// Read, not kept: the message is encoded from them before Encrypt
	// returns.
	return g.protect(content, wire.WireFormatPrivateMessage)
}

// protect signs content with the current epoch's context and protects it in
// wire format wf (RFC 9420, Section 6). Commits are protected elsewhere
// because their confirmation tag depends on the next epoch.
func (g *Group) protect(content *wire.FramedContent, wf wire.WireFormat) ([]byte, error) {
	ac, err := framing.Sign(g.signer.signer, wf, content, g.st.ctx)
	if err != nil {
		return nil, err
	}
	return g.protectSigned(g.st, ac)
}

// protectSigned wraps a signed AuthenticatedContent of st's epoch.
func (g *Group) protectSigned(st *epochState, ac *wire.AuthenticatedContent) ([]byte, error) {
	fe := st.framingEpoch()
	switch ac.WireFormat {
	case wire.WireFormatPublicMessage:
		pm, err := fe.ProtectPublic(ac)
		if err != nil {
			return nil, err
		}
		return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: ac.WireFormat, PublicMessage: pm})
	case wire.WireFormatPrivateMessage:
		return fe.ProtectPrivateMessage(ac, g.padding, g.cfg.rand())
	}
	return nil, errors.New("mls: bad wire format")
}

// Received is the outcome of processing one message. Exactly one of
// Application, Proposal and Commit is set.
type Received struct {
	Epoch  uint64
	Sender Sender
	// AuthenticatedData is the sender's unencrypted authenticated data.
	AuthenticatedData []byte
	// Application is the plaintext of an application message.
	Application []byte
	// Proposal describes a proposal now cached for the next commit.
	Proposal *ProposalInfo
	// Commit is a validated commit, staged: call MergeStagedCommit to
	// enter the new epoch, or drop it to stay.
	Commit *StagedCommit
}

// Sender identifies who sent a message.
type Sender struct {
	Type SenderType
	// Leaf is the member's leaf (SenderMember) or the index into the
	// external_senders extension (SenderExternal).
	Leaf LeafIndex
}

// SenderType is the kind of sender (RFC 9420, Section 6).
type SenderType uint8

// Sender types.
const (
	SenderMember            = SenderType(wire.SenderTypeMember)
	SenderExternal          = SenderType(wire.SenderTypeExternal)
	SenderNewMemberProposal = SenderType(wire.SenderTypeNewMemberProposal)
	SenderNewMemberCommit   = SenderType(wire.SenderTypeNewMemberCommit)
)

func senderFromWire(s wire.Sender) Sender {
	switch s.SenderType {
	case wire.SenderTypeMember:
		return Sender{Type: SenderMember, Leaf: LeafIndex(s.LeafIndex)}
	case wire.SenderTypeExternal:
		return Sender{Type: SenderExternal, Leaf: LeafIndex(s.SenderIndex)}
	}
	return Sender{Type: SenderType(s.SenderType)}
}

// Process decodes and validates one MLSMessage for this group: an
// application message is decrypted, a proposal is validated and cached, a
// commit is validated and staged. A failed call leaves the group as it was,
// except that a PrivateMessage refused after it decrypted and verified has
// used up its key (see the package documentation).
func (g *Group) Process(data []byte) (*Received, error) {
	r, err := g.process(data)
	return r, classify(err)
}

func (g *Group) process(data []byte) (*Received, error) {
	if g.removed {
		return nil, ErrRemoved
	}
	// The decoder copies data once; what it returns aliases that copy,
	// never the caller's slice.
	m, err := wire.UnmarshalMLSMessage(data)
	if err != nil {
		return nil, err
	}
	if m.Version != wire.ProtocolVersionMLS10 {
		return nil, invalid(ErrUnsupported, "6", "protocol version %d", m.Version)
	}
	var ac *wire.AuthenticatedContent
	st := g.st
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		pm := m.PublicMessage
		if !bytes.Equal(pm.Content.GroupID, st.ctx.GroupID) {
			return nil, invalid(ErrWrongGroup, "6", "group id")
		}
		if pm.Content.Epoch != st.ctx.Epoch {
			return nil, invalid(ErrWrongEpoch, "6", "PublicMessage for epoch %d, group is at %d", pm.Content.Epoch, st.ctx.Epoch)
		}
		if ac, err = st.framingEpoch().UnprotectPublic(pm, st.memberKeys); err != nil {
			return nil, err
		}
	case wire.WireFormatPrivateMessage:
		pm := m.PrivateMessage
		if !bytes.Equal(pm.GroupID, st.ctx.GroupID) {
			return nil, invalid(ErrWrongGroup, "6", "group id")
		}
		if pm.Epoch != st.ctx.Epoch {
			// Late application messages of a retained past epoch.
			if pm.ContentType != wire.ContentTypeApplication {
				return nil, invalid(ErrWrongEpoch, "6", "handshake for epoch %d, group is at %d", pm.Epoch, st.ctx.Epoch)
			}
			return g.processPastApplication(pm)
		}
		if ac, err = st.framingEpoch().UnprotectPrivate(pm, st.memberKeys); err != nil {
			return nil, err
		}
	default:
		return nil, invalid(ErrUnsupported, "6", "%v is not a group message", m.WireFormat)
	}
	c := &ac.Content
	if c.Sender.SenderType == wire.SenderTypeMember && treemath.LeafIndex(c.Sender.LeafIndex) == st.me {
		return nil, ErrOwnMessage
	}
	rcv := &Received{Epoch: c.Epoch, Sender: senderFromWire(c.Sender), AuthenticatedData: c.AuthenticatedData}
	switch c.ContentType {
	case wire.ContentTypeApplication:
		rcv.Application = c.ApplicationData
	case wire.ContentTypeProposal:
		info, err := g.receiveProposal(ac)
		if err != nil {
			return nil, err
		}
		rcv.Proposal = info
	case wire.ContentTypeCommit:
		sc, err := g.stageCommit(ac)
		if err != nil {
			return nil, err
		}
		rcv.Commit = sc
	}
	return rcv, nil
}

func (g *Group) processPastApplication(pm *wire.PrivateMessage) (*Received, error) {
	for _, p := range g.past {
		if p.epoch != pm.Epoch {
			continue
		}
		ac, err := p.fe.UnprotectPrivate(pm, func(leaf uint32) ([]byte, bool) {
			l := p.tree.Leaf(treemath.LeafIndex(leaf))
			if l == nil {
				return nil, false
			}
			return l.SignatureKey, true
		})
		if err != nil {
			return nil, err
		}
		c := &ac.Content
		return &Received{Epoch: c.Epoch, Sender: senderFromWire(c.Sender), AuthenticatedData: c.AuthenticatedData,
			Application: c.ApplicationData}, nil
	}
	return nil, invalid(ErrWrongEpoch, "9.2", "epoch %d is not retained", pm.Epoch)
}
