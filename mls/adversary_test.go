package mls

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// The adversarial harness (RFC 9420 receiver-side rules, issue 12). A test
// plays a malicious member, external sender, new member or outsider: it
// builds handshakes whose content is anything it likes (any sender, any
// proposal list, crafted UpdatePaths and LeafNodes, any extensions) and
// still signs and protects them correctly, so a receiver can only refuse
// them by enforcing the rule they break. Bit flips and forged signatures
// are the business of hostile_test.go; here every signature, membership
// tag, AEAD and, where the forger can compute it, confirmation tag is
// valid.
//
// The functions are exported to the black-box tests of package mls_test
// (catalogue_test.go, fuzz_stateful_test.go), which take the wire types
// from internal/wire directly.

// Forge describes one handshake (or application message) to build as the
// member whose Group is passed to ForgeMessage. Zero fields take the honest
// value.
type Forge struct {
	// WireFormat is wire.WireFormatPublicMessage (the default) or
	// wire.WireFormatPrivateMessage.
	WireFormat wire.WireFormat
	// Sender replaces the forger's own member sender.
	Sender *wire.Sender
	// Signer signs the content (default: the forger's key). For an
	// external commit it also signs the joiner's leaf.
	Signer *SignatureKeyPair
	// GroupID and Epoch replace the group's.
	GroupID []byte
	Epoch   *uint64
	// AuthenticatedData is sent with the content.
	AuthenticatedData []byte

	// Exactly one of Proposal, Commit and Application.
	Proposal    *wire.Proposal
	Commit      *CommitForge
	Application []byte

	// MembershipKey, if set, replaces the epoch's membership_key in the
	// membership tag (an outsider who holds a member's signing key but
	// not the epoch's secrets).
	MembershipKey []byte

	// PrivateMessage only: Padding is appended to the content as is (it
	// may hold non-zero bytes); SenderDataLeaf replaces the leaf_index of
	// the SenderData (the content key is still that leaf's ratchet).
	Padding        []byte
	SenderDataLeaf *uint32
}

// CommitForge is the body of a forged commit.
type CommitForge struct {
	// Proposals are sent as given: by value or by any reference.
	Proposals []wire.ProposalOrRef
	// Path adds an UpdatePath computed against the tree the proposals
	// lead to (applied leniently, whatever their validity).
	Path bool
	// Leaf edits the committer's new LeafNode before the path is built
	// (credential, capabilities, extensions); the path fills in the
	// encryption key, source, parent hash and signature.
	Leaf func(*wire.LeafNode)
	// EditPath edits the finished UpdatePath. Its LeafNode is then signed
	// again by the committer's key over the committer's leaf index, unless
	// KeepLeafSignature.
	EditPath          func(*wire.UpdatePath)
	KeepLeafSignature bool
	// ConfirmationTag replaces the computed confirmation tag.
	ConfirmationTag []byte
	// Credential is the joiner's credential in an external commit.
	Credential *Credential
}

// ForgeMessage builds f as g's member (or, with a non-member Sender, as the
// outsider whose key is f.Signer, using g only for the group's public
// state) and returns the encoded MLSMessage. g is left as it was, except
// that a PrivateMessage takes the next generation of the ratchet it uses.
func ForgeMessage(g *Group, f *Forge) ([]byte, error) {
	st := g.st
	signer := g.signer
	if f.Signer != nil {
		signer = f.Signer
	}
	sender := wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: uint32(st.me)}
	if f.Sender != nil {
		sender = *f.Sender
	}
	content := &wire.FramedContent{
		GroupID: st.ctx.GroupID, Epoch: st.ctx.Epoch, Sender: sender,
		AuthenticatedData: bytes.Clone(f.AuthenticatedData),
	}
	if f.GroupID != nil {
		content.GroupID = f.GroupID
	}
	if f.Epoch != nil {
		content.Epoch = *f.Epoch
	}
	wf := f.WireFormat
	if wf == 0 {
		wf = wire.WireFormatPublicMessage
	}
	var tag []byte
	switch {
	case f.Proposal != nil:
		content.ContentType, content.Proposal = wire.ContentTypeProposal, f.Proposal
	case f.Commit != nil:
		content.ContentType = wire.ContentTypeCommit
	default:
		content.ContentType, content.ApplicationData = wire.ContentTypeApplication, f.Application
	}
	var ac *wire.AuthenticatedContent
	var err error
	if f.Commit != nil {
		if ac, tag, err = forgeCommit(g, f, content, signer, wf); err != nil {
			return nil, err
		}
		ac.Auth.ConfirmationTag = tag
	} else if ac, err = framing.Sign(signerOf(signer), wf, content, st.ctx); err != nil {
		return nil, err
	} else if f.Proposal != nil {
		if raw, err := codec.Marshal(ac); err == nil {
			forgedProposals[string(st.s.RefHash("MLS 1.0 Proposal Reference", raw))] = forgedProposal{f.Proposal, sender}
		}
	}
	m := &wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wf}
	// The protection is computed with the real epoch's context even when
	// the content names another group or epoch: the receiver must refuse
	// it for that, not for a bad tag.
	ctx := *st.ctx
	ctx.GroupID, ctx.Epoch = content.GroupID, content.Epoch
	switch wf {
	case wire.WireFormatPublicMessage:
		pm := &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth}
		pm.Auth.ContentType = content.ContentType
		if sender.SenderType == wire.SenderTypeMember && st.keys != nil {
			tbm := wire.AuthenticatedContentTBM{ContentTBS: *ac.TBS(&ctx), Auth: ac.Auth}
			raw, err := codec.Marshal(&tbm)
			if err != nil {
				return nil, err
			}
			key := []byte(st.keys.Membership)
			if f.MembershipKey != nil {
				key = f.MembershipKey
			}
			pm.MembershipTag = st.s.MAC(key, patched(raw))
		}
		m.PublicMessage = pm
	case wire.WireFormatPrivateMessage:
		if m.PrivateMessage, err = forgePrivate(g, ac, f); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("mls: forge: wire format")
	}
	out, err := codec.Marshal(m)
	return patched(out), err
}

// bytePatch, while WithBytePatch runs, rewrites every encoding the
// harness signs, MACs or returns. It builds what the encoder refuses to
// (two extensions of one type, RFC 9420, Section 13.4) while keeping every
// signature and tag valid: the structs carry two distinct types, and the
// patch makes them equal in each signed encoding and in the message sent.
var bytePatch func([]byte) []byte

// WithBytePatch runs f with patch applied to everything the harness signs
// and sends.
func WithBytePatch(patch func([]byte) []byte, f func()) {
	bytePatch = patch
	defer func() { bytePatch = nil }()
	f()
}

func patched(b []byte) []byte {
	if bytePatch == nil || b == nil {
		return b
	}
	return bytePatch(bytes.Clone(b))
}

type patchedSigner struct{ suite.Signer }

func (p patchedSigner) SignWithLabel(label string, content []byte) ([]byte, error) {
	return p.Signer.SignWithLabel(label, patched(content))
}

func signerOf(k *SignatureKeyPair) suite.Signer { return patchedSigner{k.signer} }

// forgedProposals remembers every proposal ForgeMessage made, by
// reference, so that a forged commit can apply the forger's own proposals
// when it refers to them (an honest sender caches its own proposals).
var forgedProposals = map[string]forgedProposal{}

type forgedProposal struct {
	p      *wire.Proposal
	sender wire.Sender
}

// forgePrivate does what framing.ProtectPrivate does, with the padding and
// the SenderData leaf index the forger chooses.
func forgePrivate(g *Group, ac *wire.AuthenticatedContent, f *Forge) (*wire.PrivateMessage, error) {
	st, s := g.st, g.st.s
	c := &ac.Content
	kind, ok := secrettree.KindOf(c.ContentType)
	if !ok {
		return nil, errors.New("mls: forge: content type")
	}
	gen, key, nonce, err := st.secrets.Next(treemath.LeafIndex(c.Sender.LeafIndex), kind)
	if err != nil {
		return nil, err
	}
	pmc := wire.PrivateMessageContent{ContentType: c.ContentType, ApplicationData: c.ApplicationData,
		Proposal: c.Proposal, Commit: c.Commit, Auth: ac.Auth}
	pmc.Auth.ContentType = c.ContentType
	plaintext, err := codec.Marshal(&pmc)
	if err != nil {
		return nil, err
	}
	plaintext = append(plaintext, f.Padding...)
	aad, err := codec.Marshal(&wire.PrivateContentAAD{GroupID: c.GroupID, Epoch: c.Epoch,
		ContentType: c.ContentType, AuthenticatedData: c.AuthenticatedData})
	if err != nil {
		return nil, err
	}
	var guard [4]byte
	_, _ = rand.Read(guard[:])
	n := bytes.Clone(nonce)
	for i := range guard {
		n[i] ^= guard[i]
	}
	pm := &wire.PrivateMessage{GroupID: c.GroupID, Epoch: c.Epoch, ContentType: c.ContentType,
		AuthenticatedData: c.AuthenticatedData}
	if pm.Ciphertext, err = s.Seal(key, n, aad, plaintext); err != nil {
		return nil, err
	}
	sd := wire.SenderData{LeafIndex: c.Sender.LeafIndex, Generation: gen, ReuseGuard: guard}
	if f.SenderDataLeaf != nil {
		sd.LeafIndex = *f.SenderDataLeaf
	}
	sdBytes, err := codec.Marshal(&sd)
	if err != nil {
		return nil, err
	}
	sdAAD, err := codec.Marshal(&wire.SenderDataAAD{GroupID: c.GroupID, Epoch: c.Epoch, ContentType: c.ContentType})
	if err != nil {
		return nil, err
	}
	k, nn := keyschedule.SenderDataKeyNonce(s, st.keys.SenderData, pm.Ciphertext)
	if pm.EncryptedSenderData, err = s.Seal(k, nn, sdAAD, sdBytes); err != nil {
		return nil, err
	}
	return pm, nil
}

// forgeCommit signs a commit with content's sender and computes the
// confirmation tag the forger would: the proposals are applied to a copy of
// the tree without validation (what cannot be applied is skipped), the
// path is made for the result, and the key schedule runs with the PSKs the
// forger can find (none found: no PSKs).
func forgeCommit(g *Group, f *Forge, content *wire.FramedContent, signer *SignatureKeyPair,
	wf wire.WireFormat) (*wire.AuthenticatedContent, []byte, error) {
	st, s, cf := g.st, g.st.s, f.Commit
	external := content.Sender.SenderType == wire.SenderTypeNewMemberCommit
	tree := st.tree.Clone()
	exts := st.ctx.Extensions
	var (
		updates, removes, adds []*wire.Proposal
		upSenders              []uint32
		psks                   []wire.PreSharedKeyID
		kemOutput              []byte
	)
	commit := &wire.Commit{Proposals: cf.Proposals}
	for _, por := range cf.Proposals {
		p, from := por.Proposal, content.Sender
		if por.Type == wire.ProposalOrRefTypeReference {
			p = nil
			for _, cp := range st.proposals {
				if bytes.Equal(cp.ref, por.Reference) {
					p, from = cp.proposal, cp.sender
				}
			}
			if fp, ok := forgedProposals[string(por.Reference)]; ok && p == nil {
				p, from = fp.p, fp.sender
			}
		}
		if p == nil {
			continue
		}
		switch p.ProposalType {
		case wire.ProposalTypeUpdate:
			updates, upSenders = append(updates, p), append(upSenders, from.LeafIndex)
		case wire.ProposalTypeRemove:
			removes = append(removes, p)
		case wire.ProposalTypeAdd:
			adds = append(adds, p)
		case wire.ProposalTypeGroupContextExtensions:
			exts = p.GroupContextExtensions.Extensions
		case wire.ProposalTypePSK:
			psks = append(psks, p.PreSharedKey.PSK)
		case wire.ProposalTypeExternalInit:
			kemOutput = p.ExternalInit.KEMOutput
		}
	}
	for i, p := range updates {
		_ = tree.UpdateLeaf(treemath.LeafIndex(upSenders[i]), &p.Update.LeafNode)
	}
	for _, p := range removes {
		if tree.Leaf(treemath.LeafIndex(p.Remove.Removed)) != nil {
			_ = tree.RemoveLeaf(treemath.LeafIndex(p.Remove.Removed))
		}
	}
	var joiners []treemath.LeafIndex
	for _, p := range adds {
		if l, err := tree.AddLeaf(&p.Add.KeyPackage.LeafNode); err == nil {
			joiners = append(joiners, l)
		}
	}
	provisional := *st.ctx
	provisional.Epoch++
	provisional.Extensions = exts
	var commitSecret []byte
	if cf.Path {
		at := treemath.LeafIndex(content.Sender.LeafIndex)
		var leaf *wire.LeafNode
		if external {
			at = tree.FreeLeaf()
			cred := BasicCredential([]byte("forger"))
			if cf.Credential != nil {
				cred = *cf.Credential
			}
			leaf = &wire.LeafNode{SignatureKey: signer.pub, Credential: cred.toWire(),
				Capabilities: defaultCapabilities(g.cfg, false)}
		} else if old := tree.Leaf(at); old != nil {
			leaf = &wire.LeafNode{SignatureKey: signer.pub, Credential: old.Credential,
				Capabilities: old.Capabilities, Extensions: old.Extensions}
		} else {
			mine := st.tree.Leaf(st.me)
			leaf = &wire.LeafNode{SignatureKey: signer.pub, Credential: mine.Credential, Capabilities: mine.Capabilities}
		}
		leaf.LeafNodeSource = wire.LeafNodeSourceCommit
		if cf.Leaf != nil {
			cf.Leaf(leaf)
		}
		created, err := tree.CreateUpdatePath(&ratchettree.PathParams{Sender: at, Leaf: leaf, Signer: signerOf(signer),
			GroupContext: &provisional, Joiners: joiners, Rand: rand.Reader})
		if err != nil {
			return nil, nil, err
		}
		commit.Path = created.Path
		commitSecret = created.CommitSecret
		if cf.EditPath != nil {
			cf.EditPath(commit.Path)
			if !cf.KeepLeafSignature {
				l := &commit.Path.LeafNode
				if l.Signature, err = signerOf(signer).SignWithLabel("LeafNodeTBS", l.TBS(content.GroupID, uint32(at))); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	provisional.TreeHash = tree.TreeHash()
	content.Commit = commit
	ac, err := framing.Sign(signerOf(signer), wf, content, st.ctx)
	if err != nil {
		return nil, nil, err
	}
	if cf.ConfirmationTag != nil {
		return ac, cf.ConfirmationTag, nil
	}
	if st.keys == nil {
		return ac, make([]byte, s.HashSize()), nil
	}
	confirmed, err := keyschedule.ConfirmedTranscriptHash(s, st.interim, ac)
	if err != nil {
		return nil, nil, err
	}
	newCtx := provisional
	newCtx.ConfirmedTranscriptHash = confirmed
	ctxBytes, err := codec.Marshal(&newCtx)
	if err != nil {
		return nil, nil, err
	}
	initSecret := []byte(st.keys.Init)
	if external && kemOutput != nil {
		// The joiner knows the init_secret its kem_output encapsulates;
		// the forger, holding g's state, recovers it the way members do.
		if secret, err := g.externalInitSecret(st, kemOutput); err == nil {
			initSecret = secret
		}
	}
	found, err := g.resolvePSKs(psks, nil)
	if err != nil {
		found = nil
	}
	pskSecret, err := keyschedule.PSKSecret(s, found)
	if err != nil {
		return nil, nil, err
	}
	joiner := keyschedule.NewJoinerSecret(s, initSecret, commitSecret, ctxBytes)
	keys := joiner.WithPSK(pskSecret).Epoch(ctxBytes)
	return ac, keys.ConfirmationTag(confirmed), nil
}

// ExternalInitFor returns an ExternalInit proposal whose kem_output
// encapsulates to g's external_pub, and the init_secret it yields, for a
// forged external commit (RFC 9420, Section 8.3).
func ExternalInitFor(g *Group) (*wire.Proposal, error) {
	_, pub, err := g.st.keys.ExternalKeyPair()
	if err != nil {
		return nil, err
	}
	enc, _, err := g.st.s.HPKEExportSender(pub, nil, []byte("MLS 1.0 external init secret"), g.st.s.HashSize())
	if err != nil {
		return nil, err
	}
	return &wire.Proposal{ProposalType: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: enc}}, nil
}

// SignLeaf signs leaf with key as the LeafNode of leafIndex in groupID
// (RFC 9420, Section 7.2) and returns it re-decoded, so that its received
// encoding matches its fields.
func SignLeaf(leaf *wire.LeafNode, key *SignatureKeyPair, groupID []byte, leafIndex uint32) (*wire.LeafNode, error) {
	l := *leaf
	sig, err := signerOf(key).SignWithLabel("LeafNodeTBS", l.TBS(groupID, leafIndex))
	if err != nil {
		return nil, err
	}
	l.Signature = sig
	return Redecode(&l)
}

// UpdateLeaf returns an Update proposal's LeafNode for g's member: a fresh
// encryption key, source update, edited by edit, then signed by key (g's
// signer if nil) over leafIndex.
func UpdateLeaf(g *Group, key *SignatureKeyPair, leafIndex uint32, edit func(*wire.LeafNode)) (*wire.LeafNode, error) {
	old := g.st.tree.Leaf(g.st.me)
	_, pub, err := g.st.s.GenerateKEMKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if key == nil {
		key = g.signer
	}
	l := &wire.LeafNode{EncryptionKey: pub, SignatureKey: key.pub, Credential: old.Credential,
		Capabilities: old.Capabilities, LeafNodeSource: wire.LeafNodeSourceUpdate, Extensions: old.Extensions}
	if edit != nil {
		edit(l)
	}
	return SignLeaf(l, key, g.st.ctx.GroupID, leafIndex)
}

// KeyPackageEdit returns bundle's KeyPackage edited by edit and signed
// again, leaf and package, by the bundle's key, the leaf first.
func KeyPackageEdit(bundle *KeyPackageBundle, edit func(*wire.KeyPackage)) (*wire.KeyPackage, error) {
	kp := *bundle.KeyPackage.w
	if edit != nil {
		edit(&kp)
	}
	leaf, err := SignLeaf(&kp.LeafNode, bundle.Signer, nil, 0)
	if err != nil {
		return nil, err
	}
	kp.LeafNode = *leaf
	if kp.Signature, err = signerOf(bundle.Signer).SignWithLabel("KeyPackageTBS", kp.TBS()); err != nil {
		return nil, err
	}
	return Redecode(&kp)
}

// WireKeyPackage exposes kp's wire form.
func WireKeyPackage(kp *KeyPackage) *wire.KeyPackage { return kp.w }

// Redecode encodes v and decodes it again, so the copy's received encoding
// (Raw) is its encoding.
func Redecode[T any, P interface {
	*T
	codec.Marshaler
	wire.Unmarshaler
}](v P) (*T, error) {
	raw, err := codec.Marshal(v)
	if err != nil {
		return nil, err
	}
	return wire.Decode[T, P](raw)
}

// WelcomeForge describes a Welcome to forge.
type WelcomeForge struct {
	// Tree edits the ratchet tree (the committer's tree with the joiner
	// added at the leftmost free leaf) before the tree hash is computed.
	Tree func(wire.RatchetTree) wire.RatchetTree
	// GroupInfo edits the GroupInfo after the tree hash and confirmation
	// tag are set, before it is signed.
	GroupInfo func(*wire.GroupInfo)
	// Secrets edits the GroupSecrets; PSKs maps each PSK it names to the
	// value the forger uses (a missing one counts as unknown: all zero).
	Secrets func(*wire.GroupSecrets)
	PSKs    [][]byte
	// Signer signs the GroupInfo (default: the committer's key).
	Signer *SignatureKeyPair
	// Epoch is the GroupContext epoch (default: the committer's + 1).
	Epoch *uint64
}

// ForgeWelcome builds a Welcome from g's member to bundle's KeyPackage for a
// group state of the forger's choosing, with a valid GroupInfo signature,
// confirmation tag and encryption.
func ForgeWelcome(g *Group, kp *KeyPackage, f *WelcomeForge) ([]byte, error) {
	st, s := g.st, g.st.s
	tree := st.tree.Clone()
	if _, err := tree.AddLeaf(&kp.w.LeafNode); err != nil {
		return nil, err
	}
	nodes := tree.Nodes()
	if f.Tree != nil {
		nodes = f.Tree(nodes)
	}
	encTree, err := codec.Marshal(&nodes)
	if err != nil {
		return nil, err
	}
	ctxp, err := Redecode(st.ctx)
	if err != nil {
		return nil, err
	}
	ctx := *ctxp
	ctx.Epoch++
	if f.Epoch != nil {
		ctx.Epoch = *f.Epoch
	}
	if t, err := ratchettree.Decode(s, encTree); err == nil {
		ctx.TreeHash = t.TreeHash()
	}
	ctx.ConfirmedTranscriptHash = make([]byte, s.HashSize())
	_, _ = rand.Read(ctx.ConfirmedTranscriptHash)
	gs := &wire.GroupSecrets{JoinerSecret: make([]byte, s.HashSize())}
	_, _ = rand.Read(gs.JoinerSecret)
	if f.Secrets != nil {
		f.Secrets(gs)
	}
	var psks []keyschedule.PSK
	for i, id := range gs.PSKs {
		v := make([]byte, s.HashSize())
		if i < len(f.PSKs) {
			v = f.PSKs[i]
		}
		psks = append(psks, keyschedule.PSK{ID: id, Value: v})
	}
	pskSecret, err := keyschedule.PSKSecret(s, psks)
	if err != nil {
		return nil, err
	}
	joiner, err := keyschedule.JoinerSecretFromBytes(s, gs.JoinerSecret)
	if err != nil {
		return nil, err
	}
	member := joiner.WithPSK(pskSecret)
	ctxBytes, err := codec.Marshal(&ctx)
	if err != nil {
		return nil, err
	}
	keys := member.Epoch(ctxBytes)
	gi := &wire.GroupInfo{GroupContext: ctx, ConfirmationTag: keys.ConfirmationTag(ctx.ConfirmedTranscriptHash),
		Signer: uint32(st.me), Extensions: []wire.Extension{{ExtensionType: wire.ExtensionTypeRatchetTree, ExtensionData: encTree}}}
	if f.GroupInfo != nil {
		f.GroupInfo(gi)
	}
	signer := g.signer
	if f.Signer != nil {
		signer = f.Signer
	}
	if err := framing.SignGroupInfo(signer.signer, gi); err != nil {
		return nil, err
	}
	w, err := framing.NewWelcome(s, member.WelcomeSecret(), gi, []framing.NewMember{{KeyPackage: kp.w, Secrets: gs}})
	if err != nil {
		return nil, err
	}
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatWelcome, Welcome: w})
}

// ForgeGroupInfo returns g's current GroupInfo (with the tree and
// external_pub) edited by edit and signed by key (g's if nil).
func ForgeGroupInfo(g *Group, key *SignatureKeyPair, edit func(*wire.GroupInfo)) ([]byte, error) {
	if key == nil {
		key = g.signer
	}
	msg, _, _, err := g.groupInfo(g.st, key, nil, true, true)
	if err != nil {
		return nil, err
	}
	m, err := wire.UnmarshalMLSMessage(msg) // a copy: no slice shared with g
	if err != nil || m.GroupInfo == nil {
		return nil, fmt.Errorf("re-decoding our own GroupInfo: %v", err)
	}
	gi := m.GroupInfo
	if edit != nil {
		edit(gi)
	}
	if err := framing.SignGroupInfo(signerOf(key), gi); err != nil {
		return nil, err
	}
	out, err := codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatGroupInfo, GroupInfo: gi})
	return patched(out), err
}

// ProposalRefOf returns the reference of the proposal in an encoded
// PublicMessage (RFC 9420, Section 5.2), computed as g would.
func ProposalRefOf(g *Group, msg []byte) ([]byte, error) {
	m, err := wire.UnmarshalMLSMessage(bytes.Clone(msg))
	if err != nil {
		return nil, err
	}
	if m.WireFormat != wire.WireFormatPublicMessage {
		return nil, errors.New("mls: not a PublicMessage")
	}
	return g.st.proposalRef(m.PublicMessage.AuthenticatedContent())
}

// GroupState exposes, for the harness, g's wire GroupContext.
func GroupState(g *Group) *wire.GroupContext { return g.st.ctx }

// LeafOf returns g's LeafNode at leaf l (nil if blank).
func LeafOf(g *Group, l uint32) *wire.LeafNode { return g.st.tree.Leaf(treemath.LeafIndex(l)) }

// SignerOf returns g's signature key.
func SignerOf(g *Group) *SignatureKeyPair { return g.signer }

// ResumeForge runs g's internal resume step (the first commit of a ReInit
// or branch group) with any parameters, so a test can make a new group
// that does not match the ReInit, or a branch with another member set.
func ResumeForge(g *Group, groupID []byte, cs CipherSuite, exts []Extension, reinit bool,
	keyPackages []*KeyPackage, signer *SignatureKeyPair) (*Group, *CommitResult, error) {
	usage := wire.ResumptionPSKUsageBranch
	if reinit {
		usage = wire.ResumptionPSKUsageReInit
	}
	return g.resume(groupID, cs, exts, usage, g.st.ctx.Epoch, keyPackages, &ResumeOptions{Signer: signer})
}

// PublicFingerprint summarises what a failed Process must leave unchanged
// in a PublicGroup: epoch, GroupContext, transcript hash, tree and cached
// proposals.
func PublicFingerprint(p *PublicGroup) string {
	st := p.g.st
	tree, _ := st.tree.Encode()
	var b bytes.Buffer
	fmt.Fprintf(&b, "epoch=%d\nctx=%x\ninterim=%x\ntree=%x\n", st.ctx.Epoch, st.ctxBytes, st.interim, tree)
	for _, cp := range st.proposals {
		fmt.Fprintf(&b, "proposal %x\n", cp.ref)
	}
	return b.String()
}

// ResetForged forgets the proposals ForgeMessage remembered (between fuzz
// runs, so memory does not grow).
func ResetForged() { clear(forgedProposals) }

// ResumptionSecret returns g's resumption_psk of epoch (RFC 9420, Section
// 8.6), for a forged Welcome that resumes g.
func ResumptionSecret(g *Group, epoch uint64) []byte {
	s, _ := g.resumptionPSK(epoch)
	return bytes.Clone(s)
}

// EncodeRatchetTree encodes nodes and returns their tree hash in g's
// suite, for a forger who edits the tree a GroupInfo carries.
func EncodeRatchetTree(g *Group, nodes wire.RatchetTree) (enc, treeHash []byte, err error) {
	if enc, err = codec.Marshal(&nodes); err != nil {
		return nil, nil, err
	}
	t, err := ratchettree.Decode(g.st.s, enc)
	if err != nil {
		return nil, nil, err
	}
	return enc, t.TreeHash(), nil
}

// UncheckedKeyPackage wraps w as a KeyPackage that never went through
// ParseKeyPackage's checks (as one loaded from storage would be).
func UncheckedKeyPackage(w *wire.KeyPackage) *KeyPackage { return keyPackageFromWire(w) }
