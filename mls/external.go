package mls

import (
	"bytes"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// groupInfoView is a verified GroupInfo with its tree.
type groupInfoView struct {
	s        *suite.Suite
	gi       *wire.GroupInfo
	tree     *ratchettree.Tree
	warnings []error // tolerated lifetime problems (Config.StrictLeafLifetimes)
}

// verifyGroupInfo decodes a GroupInfo MLSMessage, finds its tree, verifies
// its signature and validates the tree against it (RFC 9420, Sections
// 12.4.3 and 12.4.3.1).
func verifyGroupInfo(cfg *Config, groupInfo, ratchetTree []byte) (*groupInfoView, error) {
	m, err := wire.UnmarshalMLSMessage(groupInfo) // a copy of its own
	if err != nil {
		return nil, err
	}
	if m.WireFormat != wire.WireFormatGroupInfo {
		return nil, invalid(ErrInvalidWelcome, "6", "message is a %v, not a GroupInfo", m.WireFormat)
	}
	gi := m.GroupInfo
	if gi.GroupContext.Version != wire.ProtocolVersionMLS10 {
		return nil, invalid(ErrUnsupported, "12.4.3", "GroupInfo version")
	}
	s, err := CipherSuite(gi.GroupContext.CipherSuite).suite()
	if err != nil {
		return nil, err
	}
	tree, warnings, err := verifiedTree(cfg, s, gi, ratchetTree)
	if err != nil {
		return nil, err
	}
	return &groupInfoView{s: s, gi: gi, tree: tree, warnings: warnings}, nil
}

// verifiedTree finds a GroupInfo's ratchet tree (extension or out of band),
// verifies the GroupInfo's signature by its signer's leaf, and validates the
// whole tree against the GroupContext (RFC 9420, Section 12.4.3.1). The
// leaves' lifetimes are enforced only with Config.StrictLeafLifetimes;
// otherwise their problems are returned as warnings: a member that has not
// updated since its KeyPackage expired must not make the group unjoinable
// (Section 7.3 RECOMMENDS the check for received leaves).
//
// The tree keeps the bytes it is decoded from. A tree in the GroupInfo's
// extension is decoded where it lies, in the GroupInfo's own buffer (the
// decrypted Welcome's, or the copy verifyGroupInfo decoded), which the
// GroupContext the group keeps points into anyway: the group holds one
// copy of the tree's encoding, not two. A tree given out of band is the
// caller's, and copied.
func verifiedTree(cfg *Config, s *suite.Suite, gi *wire.GroupInfo, outOfBand []byte) (*ratchettree.Tree, []error, error) {
	data, ok := findExtension(gi.Extensions, wire.ExtensionTypeRatchetTree)
	if !ok {
		if outOfBand == nil {
			return nil, nil, invalid(ErrInvalidWelcome, "12.4.3.3", "no ratchet tree in the Welcome and none given")
		}
		data = bytes.Clone(outOfBand)
	}
	ctx := &gi.GroupContext
	// The leaves' signatures are verified in the background while the tree
	// is built and the GroupInfo's signature checked; the errors are those
	// of the checks in the order written here.
	tree, err := ratchettree.DecodeValidated(s, data, ctx.TreeHash, cfg.receivedPolicy(policyFor(cfg, ctx)),
		func(tree *ratchettree.Tree) error {
			// RFC 9420, Section 12.4.3.1: the signer is a leaf of the tree.
			if !treemath.LeafIndex(gi.Signer).InTree(tree.LeafCount()) {
				return invalid(ErrInvalidWelcome, "12.4.3.1", "GroupInfo signer %d is outside the tree", gi.Signer)
			}
			signer := tree.Leaf(treemath.LeafIndex(gi.Signer))
			if signer == nil {
				return invalid(ErrInvalidWelcome, "12.4.3.1", "GroupInfo signer is a blank leaf")
			}
			return framing.VerifyGroupInfo(s, signer.SignatureKey, gi)
		})
	if err != nil {
		return nil, nil, err
	}
	if err := checkGroupExtensions(ctx.Extensions, tree, cfg); err != nil {
		return nil, nil, err
	}
	return tree, cfg.treeLifetimeWarnings(tree), nil
}

// ExternalJoinOptions tunes ExternalJoin.
type ExternalJoinOptions struct {
	// RatchetTree is the encoded tree when the GroupInfo lacks the
	// ratchet_tree extension.
	RatchetTree []byte
	// RemoveLeaf, if set, removes that leaf in the same commit: a member
	// rejoining removes its old appearance ("resync", RFC 9420,
	// Section 12.4.3.2).
	RemoveLeaf *LeafIndex
	// PSKs are external or resumption PSK proposals to include.
	PSKs []*Proposal
	// AuthenticatedData is sent with the commit.
	AuthenticatedData []byte
	// Capabilities and LeafExtensions shape the joiner's leaf.
	Capabilities   *Capabilities
	LeafExtensions []Extension
	// RatchetTreeOutOfBand and ExternalPub shape the GroupInfo returned.
	ExternalPub bool
}

// ExternalJoinResult is what ExternalJoin produces.
type ExternalJoinResult struct {
	Group     *Group
	Commit    []byte // the external commit, a PublicMessage
	GroupInfo []byte // GroupInfo of the new epoch, with the ratchet tree
	// Warnings lists leaves of the group's tree whose lifetime was
	// tolerated (see Config.StrictLeafLifetimes), each a *ValidationError.
	Warnings []error
}

// ExternalJoin joins a group by external commit from a GroupInfo that
// carries external_pub (RFC 9420, Section 12.4.3.2). The returned group is
// already in the new epoch; if the delivery service does not accept the
// commit, drop the group and try again with a newer GroupInfo.
func ExternalJoin(cfg *Config, groupInfo []byte, cred Credential, sig *SignatureKeyPair, opts *ExternalJoinOptions) (*ExternalJoinResult, error) {
	r, err := externalJoin(cfg, groupInfo, cred, sig, opts)
	return r, classify(err)
}

func externalJoin(cfg *Config, groupInfo []byte, cred Credential, sig *SignatureKeyPair, opts *ExternalJoinOptions) (*ExternalJoinResult, error) {
	if opts == nil {
		opts = &ExternalJoinOptions{}
	}
	v, err := verifyGroupInfo(cfg, groupInfo, opts.RatchetTree)
	if err != nil {
		return nil, err
	}
	s, gi := v.s, v.gi
	if CipherSuite(gi.GroupContext.CipherSuite) != sig.cs {
		return nil, invalid(ErrUnsupported, "12.4.3.2", "signature key is for another cipher suite")
	}
	epData, ok := findExtension(gi.Extensions, wire.ExtensionTypeExternalPub)
	if !ok {
		return nil, errNoExternalPub
	}
	ep, err := wire.Decode[wire.ExternalPub](epData)
	if err != nil {
		return nil, err
	}
	// RFC 9420, Section 8.3: kem_output and init_secret from an HPKE
	// context to external_pub.
	kemOutput, initSecret, err := s.HPKEExportSender(ep.ExternalPub, nil, []byte("MLS 1.0 external init secret"), s.HashSize())
	if err != nil {
		return nil, invalidCause(ErrInvalidWelcome, err, "8.3", "external_pub")
	}
	defer clear(initSecret)
	ctx := gi.GroupContext
	interim, err := keyschedule.InterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	ctxBytes, err := codec.Marshal(&ctx)
	if err != nil {
		return nil, err
	}
	st := &epochState{s: s, ctx: &ctx, ctxBytes: ctxBytes, tree: v.tree, interim: interim, confTag: gi.ConfirmationTag}
	g := &Group{cfg: cfg, signer: sig, st: st}

	me := wire.Sender{SenderType: wire.SenderTypeNewMemberCommit}
	props := []resolved{{p: &wire.Proposal{ProposalType: wire.ProposalTypeExternalInit,
		ExternalInit: &wire.ExternalInit{KEMOutput: kemOutput}}, sender: me, byValue: true}}
	if opts.RemoveLeaf != nil {
		props = append(props, resolved{p: &wire.Proposal{ProposalType: wire.ProposalTypeRemove,
			Remove: &wire.Remove{Removed: uint32(*opts.RemoveLeaf)}}, sender: me, byValue: true})
	}
	for _, p := range opts.PSKs {
		wp := *p.p
		if wp.ProposalType != wire.ProposalTypePSK {
			return nil, invalid(ErrInvalidProposal, "12.2", "only PSK proposals may accompany an external commit")
		}
		psk := *wp.PreSharedKey
		if len(psk.PSK.PSKNonce) == 0 {
			if psk.PSK.PSKNonce, err = readRand(cfg, s.HashSize()); err != nil {
				return nil, err
			}
		}
		wp.PreSharedKey = &psk
		props = append(props, resolved{p: &wp, sender: me, byValue: true})
	}
	a, err := g.applyProposals(st, props, me, false)
	if err != nil {
		return nil, err
	}
	commit := &wire.Commit{}
	for _, r := range props {
		commit.Proposals = append(commit.Proposals, wire.ProposalOrRef{Type: wire.ProposalOrRefTypeProposal, Proposal: r.p})
	}
	caps := defaultCapabilities(cfg, true)
	if opts.Capabilities != nil {
		caps = opts.Capabilities.toWire()
	}
	leaf := &wire.LeafNode{SignatureKey: sig.pub, Credential: cred.toWire(), Capabilities: caps,
		LeafNodeSource: wire.LeafNodeSourceCommit, Extensions: extensionsToWire(opts.LeafExtensions)}
	if err := ensureCapabilities(leaf); err != nil {
		return nil, err
	}
	if err := checkOwnSupport(a.exts, leaf); err != nil {
		return nil, err
	}
	if a.resyncOld != nil {
		if err := validateSuccessor(cfg.validator(), credentialFromWire(a.resyncOld.Credential), cred); err != nil {
			return nil, err
		}
	}
	if err := cfg.validator().ValidateCredential(cred, sig.pub); err != nil {
		return nil, invalidCause(ErrCredentialRejected, err, "5.3.1", "own credential")
	}
	provisional := ctx
	provisional.Epoch = ctx.Epoch + 1
	provisional.Extensions = a.exts
	myLeaf := a.tree.FreeLeaf()
	created, err := a.tree.CreateUpdatePath(&ratchettree.PathParams{
		Sender: myLeaf, Leaf: leaf, Signer: sig.signer, GroupContext: &provisional, Rand: cfg.rand(),
	})
	if err != nil {
		return nil, err
	}
	commit.Path = created.Path
	provisional.TreeHash = a.tree.TreeHash()
	content := &wire.FramedContent{GroupID: ctx.GroupID, Epoch: ctx.Epoch, Sender: me,
		AuthenticatedData: bytes.Clone(opts.AuthenticatedData), ContentType: wire.ContentTypeCommit, Commit: commit}
	ac, err := framing.Sign(sig.signer, wire.WireFormatPublicMessage, content, &ctx)
	if err != nil {
		return nil, err
	}
	confirmed, err := keyschedule.ConfirmedTranscriptHash(s, interim, ac)
	if err != nil {
		return nil, err
	}
	newCtx := provisional
	newCtx.ConfirmedTranscriptHash = confirmed
	next := &epochState{s: s, tree: a.tree, priv: created.Private, me: myLeaf, ctx: &newCtx}
	if next.ctxBytes, err = codec.Marshal(&newCtx); err != nil {
		return nil, err
	}
	psks, err := g.resolvePSKs(a.psks, nil)
	if err != nil {
		return nil, err
	}
	pskSecret, err := keyschedule.PSKSecret(s, psks)
	if err != nil {
		return nil, err
	}
	joiner := keyschedule.NewJoinerSecret(s, initSecret, created.CommitSecret, next.ctxBytes)
	member := joiner.WithPSK(pskSecret)
	next.keys = member.Epoch(next.ctxBytes)
	// RFC 9420, Section 9.2: commit_secret, the path secrets, psk_secret,
	// joiner_secret and the member secret are consumed.
	created.Erase()
	pskSecret.Erase()
	joiner.Erase()
	member.Erase()
	ac.Auth.ConfirmationTag = next.keys.ConfirmationTag(confirmed)
	next.confTag = ac.Auth.ConfirmationTag
	if next.interim, err = keyschedule.InterimTranscriptHash(s, confirmed, next.confTag); err != nil {
		return nil, err
	}
	if err := next.initSecrets(cfg); err != nil {
		return nil, err
	}
	pm, err := (&framing.Epoch{Suite: s, Context: &ctx}).ProtectPublic(ac)
	if err != nil {
		return nil, err
	}
	commitMsg, err := codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
	if err != nil {
		return nil, err
	}
	joined := &Group{cfg: cfg, signer: sig, st: next, lastJoin: next.ctx.Epoch}
	joined.rememberResumption()
	joined.startKeyUpdates()
	info, err := joined.GroupInfo(true, opts.ExternalPub)
	if err != nil {
		return nil, err
	}
	joined.warnings = v.warnings
	return &ExternalJoinResult{Group: joined, Commit: commitMsg, GroupInfo: info, Warnings: v.warnings}, nil
}

// ExternalProposal makes a proposal from an external sender: a party
// listed at senderIndex in the group's external_senders extension
// (RFC 9420, Section 12.1.8). It is sent as a PublicMessage. Only Add,
// Remove, PreSharedKey, ReInit and GroupContextExtensions are allowed.
func ExternalProposal(sig *SignatureKeyPair, senderIndex uint32, groupID []byte, epoch uint64, p *Proposal, authenticatedData []byte) ([]byte, error) {
	wp := *p.p
	if err := checkProposalSender(wp.ProposalType, wire.SenderTypeExternal); err != nil {
		return nil, err
	}
	if wp.ProposalType == wire.ProposalTypePSK && len(wp.PreSharedKey.PSK.PSKNonce) == 0 {
		s, err := sig.cs.suite()
		if err != nil {
			return nil, err
		}
		psk := *wp.PreSharedKey
		if psk.PSK.PSKNonce, err = readRand(nil, s.HashSize()); err != nil {
			return nil, err
		}
		wp.PreSharedKey = &psk
	}
	return outsiderProposal(sig, wire.Sender{SenderType: wire.SenderTypeExternal, SenderIndex: senderIndex},
		groupID, epoch, &wp, authenticatedData)
}

// NewMemberAddProposal makes the Add proposal a client sends to ask to
// join a group (sender type new_member_proposal, RFC 9420, Section 12.1.8),
// signed with the KeyPackage's own key.
func NewMemberAddProposal(bundle *KeyPackageBundle, groupID []byte, epoch uint64) ([]byte, error) {
	p := &wire.Proposal{ProposalType: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *bundle.KeyPackage.w}}
	return outsiderProposal(bundle.Signer, wire.Sender{SenderType: wire.SenderTypeNewMemberProposal}, groupID, epoch, p, nil)
}

func outsiderProposal(sig *SignatureKeyPair, sender wire.Sender, groupID []byte, epoch uint64, p *wire.Proposal, aad []byte) ([]byte, error) {
	s, err := sig.cs.suite()
	if err != nil {
		return nil, err
	}
	content := &wire.FramedContent{GroupID: bytes.Clone(groupID), Epoch: epoch, Sender: sender,
		AuthenticatedData: bytes.Clone(aad), ContentType: wire.ContentTypeProposal, Proposal: p}
	ac, err := framing.Sign(sig.signer, wire.WireFormatPublicMessage, content, nil)
	if err != nil {
		return nil, err
	}
	ctx := &wire.GroupContext{GroupID: content.GroupID, Epoch: epoch, CipherSuite: wire.CipherSuite(sig.cs), Version: wire.ProtocolVersionMLS10}
	pm, err := (&framing.Epoch{Suite: s, Context: ctx}).ProtectPublic(ac)
	if err != nil {
		return nil, err
	}
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
}

// ExternalSenderExtension builds the external_senders GroupContext
// extension (RFC 9420, Section 12.1.8.1) from signature keys and credentials.
func ExternalSenderExtension(senders ...ExternalSenderInfo) (Extension, error) {
	var es wire.ExternalSenders
	for _, x := range senders {
		es = append(es, wire.ExternalSender{SignatureKey: bytes.Clone(x.SignatureKey), Credential: x.Credential.toWire()})
	}
	data, err := codec.Marshal(&es)
	if err != nil {
		return Extension{}, err
	}
	return Extension{Type: uint16(wire.ExtensionTypeExternalSenders), Data: data}, nil
}

// ExternalSenderInfo is one entry of the external_senders extension.
type ExternalSenderInfo struct {
	SignatureKey []byte
	Credential   Credential
}
