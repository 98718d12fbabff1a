package mls

import (
	"bytes"
	"errors"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// ProposalType identifies a proposal (RFC 9420, Section 12.1).
type ProposalType uint16

// Proposal types (RFC 9420, Section 17.4).
const (
	ProposalAdd                    = ProposalType(wire.ProposalTypeAdd)
	ProposalUpdate                 = ProposalType(wire.ProposalTypeUpdate)
	ProposalRemove                 = ProposalType(wire.ProposalTypeRemove)
	ProposalPSK                    = ProposalType(wire.ProposalTypePSK)
	ProposalReInit                 = ProposalType(wire.ProposalTypeReInit)
	ProposalExternalInit           = ProposalType(wire.ProposalTypeExternalInit)
	ProposalGroupContextExtensions = ProposalType(wire.ProposalTypeGroupContextExtensions)
)

// ProposalInfo describes a received or sent proposal.
type ProposalInfo struct {
	Type   ProposalType
	Ref    []byte // the proposal reference (RFC 9420, Section 5.2)
	Sender Sender
	// Added is the KeyPackage of an Add.
	Added *KeyPackage
	// Removed is the leaf of a Remove.
	Removed LeafIndex
	// PSK is the PreSharedKeyID of a PreSharedKey proposal.
	PSK *PSKID
}

// PSKID names a pre-shared key (RFC 9420, Section 8.4).
type PSKID struct {
	External bool
	ID       []byte // external PSK id
	// Resumption PSKs: usage (1 application, 2 reinit, 3 branch), group and epoch.
	Usage   uint8
	GroupID []byte
	Epoch   uint64
	Nonce   []byte
}

func pskIDFromWire(p *wire.PreSharedKeyID) *PSKID {
	return &PSKID{External: p.PSKType == wire.PSKTypeExternal, ID: bytes.Clone(p.PSKID), Usage: uint8(p.Usage),
		GroupID: bytes.Clone(p.PSKGroupID), Epoch: p.PSKEpoch, Nonce: bytes.Clone(p.PSKNonce)}
}

// proposalRef is RefHash("MLS 1.0 Proposal Reference", AuthenticatedContent)
// over the encoding as received (RFC 9420, Section 5.2).
func (st *epochState) proposalRef(ac *wire.AuthenticatedContent) ([]byte, error) {
	raw := ac.Raw()
	if raw == nil {
		var err error
		if raw, err = codec.Marshal(ac); err != nil {
			return nil, err
		}
	}
	return st.s.RefHash("MLS 1.0 Proposal Reference", raw), nil
}

func (g *Group) proposalInfo(cp *cachedProposal) *ProposalInfo {
	p := cp.proposal
	info := &ProposalInfo{Type: ProposalType(p.ProposalType), Ref: bytes.Clone(cp.ref), Sender: senderFromWire(cp.sender)}
	switch p.ProposalType {
	case wire.ProposalTypeAdd:
		info.Added = keyPackageFromWire(&p.Add.KeyPackage)
	case wire.ProposalTypeRemove:
		info.Removed = LeafIndex(p.Remove.Removed)
	case wire.ProposalTypePSK:
		info.PSK = pskIDFromWire(&p.PreSharedKey.PSK)
	}
	return info
}

// PendingProposals lists the proposals cached in this epoch.
func (g *Group) PendingProposals() []*ProposalInfo {
	var out []*ProposalInfo
	for _, cp := range g.st.proposals {
		out = append(out, g.proposalInfo(cp))
	}
	return out
}

// receiveProposal validates a proposal on its own and caches it
// (RFC 9420, Section 12.1). The full list is validated at commit time.
func (g *Group) receiveProposal(ac *wire.AuthenticatedContent) (*ProposalInfo, error) {
	st := g.st
	p := ac.Content.Proposal
	sender := ac.Content.Sender
	if err := checkProposalSender(p.ProposalType, sender.SenderType); err != nil {
		return nil, err
	}
	if err := g.validateProposal(st, p, sender, true); err != nil {
		return nil, err
	}
	ref, err := st.proposalRef(ac)
	if err != nil {
		return nil, err
	}
	for _, cp := range st.proposals {
		if bytes.Equal(cp.ref, ref) {
			return nil, invalid(ErrInvalidProposal, "12.1", "proposal already received")
		}
	}
	cp := &cachedProposal{ref: ref, proposal: p, sender: sender}
	info := g.proposalInfo(cp)
	// RFC 9420, Section 12.1.8: an external proposal that is not
	// authorized is invalid. Refused here, it is never cached, so it
	// neither holds up Encrypt nor reaches a commit.
	if err := g.cfg.authorizeExternal(st.ctx.GroupID, info); err != nil {
		return nil, err
	}
	st.proposals = append(st.proposals, cp)
	return info, nil
}

// checkProposalSender enforces which senders may send which proposals
// (RFC 9420, Sections 12.1.6, 12.1.8 and 12.1.8.1 "Ext" column).
func checkProposalSender(pt wire.ProposalType, st wire.SenderType) error {
	switch st {
	case wire.SenderTypeMember:
		if pt == wire.ProposalTypeExternalInit {
			return invalid(ErrInvalidProposal, "12.1.6", "ExternalInit outside an external commit")
		}
	case wire.SenderTypeExternal:
		switch pt {
		case wire.ProposalTypeAdd, wire.ProposalTypeRemove, wire.ProposalTypePSK, wire.ProposalTypeReInit,
			wire.ProposalTypeGroupContextExtensions:
		default:
			return invalid(ErrMalformed, "12.1.8", "external sender may not send %v", pt)
		}
	case wire.SenderTypeNewMemberProposal:
		if pt != wire.ProposalTypeAdd {
			return invalid(ErrInvalidProposal, "12.1.8", "new member may only propose Add")
		}
	default:
		return invalid(ErrUnknownSender, "6", "sender type %v may not send proposals", st)
	}
	return nil
}

// validateProposal checks one proposal against the current epoch
// (RFC 9420, Sections 12.1.1-12.1.7). received is false for proposals this
// client sends or commits by value, whose KeyPackage lifetimes are always
// enforced (Section 10.1), and true for those it receives (see
// Config.StrictLeafLifetimes).
func (g *Group) validateProposal(st *epochState, p *wire.Proposal, sender wire.Sender, received bool) error {
	return g.validateProposalChecked(st, p, sender, received, false)
}

// validateProposalChecked is validateProposal; kpChecked says an Add's
// KeyPackage already passed its group-independent checks (KeyPackage.verify,
// when this client parsed it), which are then not run again.
func (g *Group) validateProposalChecked(st *epochState, p *wire.Proposal, sender wire.Sender, received, kpChecked bool) error {
	switch p.ProposalType {
	case wire.ProposalTypeAdd:
		return g.validateKeyPackage(st, &p.Add.KeyPackage, received, kpChecked)
	case wire.ProposalTypeUpdate:
		if sender.SenderType != wire.SenderTypeMember {
			return invalid(ErrInvalidProposal, "12.1.2", "Update from a non-member")
		}
		l := treemath.LeafIndex(sender.LeafIndex)
		old := st.tree.Leaf(l)
		if old == nil {
			return invalid(ErrUnknownSender, "12.1.2", "Update from blank leaf")
		}
		if err := st.tree.ValidateLeafNode(&p.Update.LeafNode, wire.LeafNodeSourceUpdate, l, policyFor(g.cfg, st.ctx)); err != nil {
			return err
		}
		return validateSuccessor(g.cfg.validator(), credentialFromWire(old.Credential), credentialFromWire(p.Update.LeafNode.Credential))
	case wire.ProposalTypeRemove:
		if st.tree.Leaf(treemath.LeafIndex(p.Remove.Removed)) == nil {
			return invalid(ErrInvalidProposal, "12.1.3", "Remove of blank leaf %d", p.Remove.Removed)
		}
	case wire.ProposalTypePSK:
		id := &p.PreSharedKey.PSK
		if len(id.PSKNonce) != st.s.HashSize() {
			return invalid(ErrInvalidProposal, "12.1.4", "psk_nonce length")
		}
		if id.PSKType == wire.PSKTypeResumption && id.Usage != wire.ResumptionPSKUsageApplication && g.resuming == nil {
			return invalid(ErrInvalidProposal, "12.1.4", "resumption PSK with usage %v outside ReInit/branch", id.Usage)
		}
	case wire.ProposalTypeReInit:
		if p.ReInit.Version < st.ctx.Version {
			return invalid(ErrInvalidProposal, "12.1.5", "ReInit to an older version")
		}
	case wire.ProposalTypeGroupContextExtensions:
		// RFC 9420, Section 13.5: a GREASE extension type gets no special
		// treatment; like any type it must be supported by every member
		// staying in the group, checked at commit time (this client's
		// own support without its GREASE entries, checkOwnSupport).
	case wire.ProposalTypeExternalInit:
		// Checked by the external-commit rules.
	default:
		// A custom proposal type: every member must support it
		// (Section 12.2); checked at commit time.
	}
	return nil
}

// isGREASE reports whether v is one of the GREASE values 0x0A0A, 0x1A1A,
// ..., 0xEAEA (RFC 9420, Section 13.5).
func isGREASE(v uint16) bool { return v&0x0F0F == 0x0A0A && v>>12 == (v>>4)&0xF && v != 0xFAFA }

// validateKeyPackage runs RFC 9420, Section 10.1 against the group.
func (g *Group) validateKeyPackage(st *epochState, kp *wire.KeyPackage, received, checked bool) error {
	if kp.Version != st.ctx.Version || kp.CipherSuite != st.ctx.CipherSuite {
		return invalid(ErrInvalidKeyPackage, "10.1", "KeyPackage version or cipher suite differs from the group's")
	}
	if !checked {
		if err := keyPackageFromWire(kp).verify(); err != nil {
			return err
		}
	}
	p := policyFor(g.cfg, st.ctx)
	if received {
		p = g.cfg.receivedPolicy(p)
	}
	// verify() has checked the leaf's signature, here or when parsed.
	if err := st.tree.ValidateKeyPackageLeaf(&kp.LeafNode, p); err != nil {
		return invalidCause(ErrInvalidKeyPackage, err, "10.1", "leaf node")
	}
	return nil
}

// ProposeAdd sends an Add proposal for kp (RFC 9420, Section 12.1.1).
func (g *Group) ProposeAdd(kp *KeyPackage) ([]byte, error) {
	return g.propose(&wire.Proposal{ProposalType: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp.w}}, nil)
}

// ProposeRemove sends a Remove proposal for leaf l (RFC 9420, Section 12.1.3).
func (g *Group) ProposeRemove(l LeafIndex) ([]byte, error) {
	return g.propose(&wire.Proposal{ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(l)}}, nil)
}

// ProposeUpdate sends an Update proposal with a fresh leaf encryption key
// (RFC 9420, Section 12.1.2). A non-nil newSigner and cred rotate the
// credential and signature key; the application's validator decides
// whether the new credential may succeed the old.
func (g *Group) ProposeUpdate(cred *Credential, newSigner *SignatureKeyPair) ([]byte, error) {
	leaf, priv, _, err := g.freshLeaf(wire.LeafNodeSourceUpdate, cred, newSigner)
	if err != nil {
		return nil, err
	}
	out, err := g.propose(&wire.Proposal{ProposalType: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: *leaf}}, priv)
	if err == nil && newSigner != nil {
		g.st.proposals[len(g.st.proposals)-1].newSigner = newSigner
	}
	return out, err
}

// ProposeExternalPSK proposes injecting the external PSK id (RFC 9420,
// Section 12.1.4). The PSK must be in the Config's PSK store.
func (g *Group) ProposeExternalPSK(id []byte) ([]byte, error) {
	nonce, err := readRand(g.cfg, g.st.s.HashSize())
	if err != nil {
		return nil, err
	}
	return g.propose(&wire.Proposal{ProposalType: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{
		PSKType: wire.PSKTypeExternal, PSKID: bytes.Clone(id), PSKNonce: nonce}}}, nil)
}

// ProposeResumptionPSK proposes injecting this group's resumption PSK of
// epoch (RFC 9420, Sections 8.6 and 12.1.4).
func (g *Group) ProposeResumptionPSK(epoch uint64) ([]byte, error) {
	nonce, err := readRand(g.cfg, g.st.s.HashSize())
	if err != nil {
		return nil, err
	}
	return g.propose(&wire.Proposal{ProposalType: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{
		PSKType: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageApplication,
		PSKGroupID: bytes.Clone(g.st.ctx.GroupID), PSKEpoch: epoch, PSKNonce: nonce}}}, nil)
}

// ProposeGroupContextExtensions proposes replacing the GroupContext
// extensions (RFC 9420, Section 12.1.7).
func (g *Group) ProposeGroupContextExtensions(exts []Extension) ([]byte, error) {
	return g.propose(&wire.Proposal{ProposalType: wire.ProposalTypeGroupContextExtensions,
		GroupContextExtensions: &wire.GroupContextExtensions{Extensions: extensionsToWire(exts)}}, nil)
}

// ProposeReInit proposes reinitialising the group with a new group id,
// cipher suite and extensions (RFC 9420, Sections 11.2 and 12.1.5).
func (g *Group) ProposeReInit(groupID []byte, cs CipherSuite, exts []Extension) ([]byte, error) {
	return g.propose(&wire.Proposal{ProposalType: wire.ProposalTypeReInit, ReInit: &wire.ReInit{
		GroupID: bytes.Clone(groupID), Version: wire.ProtocolVersionMLS10, CipherSuite: wire.CipherSuite(cs),
		Extensions: extensionsToWire(exts)}}, nil)
}

// ProposeCustom sends a proposal of an application-defined type whose body
// is opaque data (RFC 9420, Section 13.2). Every member must list the type
// in its capabilities.
func (g *Group) ProposeCustom(t ProposalType, data []byte) ([]byte, error) {
	if t <= 7 {
		return nil, errors.New("mls: custom proposal types are above 7")
	}
	return g.propose(&wire.Proposal{ProposalType: wire.ProposalType(t), Unknown: bytes.Clone(data)}, nil)
}

// propose validates, signs, caches and protects one own proposal.
func (g *Group) propose(p *wire.Proposal, leafPriv []byte) ([]byte, error) {
	if err := g.checkCanSend(); err != nil {
		return nil, err
	}
	if g.pending != nil {
		return nil, ErrPendingCommit
	}
	st := g.st
	me := wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: uint32(st.me)}
	if p.ProposalType != wire.ProposalTypeUpdate {
		if err := g.validateProposal(st, p, me, false); err != nil {
			return nil, classify(err)
		}
	}
	content := &wire.FramedContent{
		GroupID: st.ctx.GroupID, Epoch: st.ctx.Epoch, Sender: me,
		ContentType: wire.ContentTypeProposal, Proposal: p,
	}
	ac, err := framing.Sign(g.signer.signer, g.handshakeWireFormat(), content, st.ctx)
	if err != nil {
		return nil, err
	}
	ref, err := st.proposalRef(ac)
	if err != nil {
		return nil, err
	}
	out, err := g.protectSigned(st, ac)
	if err != nil {
		return nil, err
	}
	st.proposals = append(st.proposals, &cachedProposal{ref: ref, proposal: p, sender: me, own: true, leafPriv: leafPriv})
	return out, nil
}

// freshLeaf builds a new LeafNode for this member with a fresh encryption
// key: for an Update proposal it is complete and signed; for a commit path
// the tree fills in the key, parent hash and signature.
func (g *Group) freshLeaf(source wire.LeafNodeSource, cred *Credential, newSigner *SignatureKeyPair) (*wire.LeafNode, []byte, *SignatureKeyPair, error) {
	st := g.st
	old := st.tree.Leaf(st.me)
	if old == nil {
		return nil, nil, nil, ErrRemoved
	}
	signer := g.signer
	leaf := &wire.LeafNode{
		SignatureKey:   old.SignatureKey,
		Credential:     old.Credential,
		Capabilities:   old.Capabilities,
		LeafNodeSource: source,
		Extensions:     old.Extensions,
	}
	if newSigner != nil {
		if newSigner.cs != g.CipherSuite() {
			return nil, nil, nil, errors.New("mls: new signature key is for another cipher suite")
		}
		signer = newSigner
		leaf.SignatureKey = newSigner.pub
	}
	if cred != nil {
		leaf.Credential = cred.toWire()
		if err := validateSuccessor(g.cfg.validator(), credentialFromWire(old.Credential), *cred); err != nil {
			return nil, nil, nil, err
		}
	}
	if source != wire.LeafNodeSourceUpdate {
		return leaf, nil, signer, nil
	}
	priv, pub, err := st.s.GenerateKEMKey(g.cfg.rand())
	if err != nil {
		return nil, nil, nil, err
	}
	leaf.EncryptionKey = pub
	if leaf.Signature, err = signer.sign("LeafNodeTBS", leaf.TBS(st.ctx.GroupID, uint32(st.me))); err != nil {
		return nil, nil, nil, err
	}
	raw, err := codec.Marshal(leaf)
	if err != nil {
		return nil, nil, nil, err
	}
	decoded, err := wire.UnmarshalLeafNode(raw)
	if err != nil {
		return nil, nil, nil, err
	}
	return decoded, priv, signer, nil
}
