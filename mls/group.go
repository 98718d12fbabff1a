package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// LeafIndex is a member's position in the ratchet tree.
type LeafIndex uint32

// epochState is everything a member knows in one epoch. Once built it is
// only changed in place by sending and receiving messages (the secret tree
// ratchets) and by caching proposals; commits build a new epochState and
// swap it in when merged, so a failed or discarded commit leaves the old one
// untouched (stage, then merge).
type epochState struct {
	s        *suite.Suite
	ctx      *wire.GroupContext
	ctxBytes []byte
	tree     *ratchettree.Tree
	priv     *ratchettree.PrivateState // nil for a PublicGroup
	me       treemath.LeafIndex
	keys     *keyschedule.Epoch
	secrets  *secrettree.Tree
	interim  []byte
	confTag  []byte

	// proposals received or sent in this epoch, in order (RFC 9420,
	// Section 12.1): candidates for the next commit and the targets of
	// proposal references.
	proposals []*cachedProposal

	// reinit is the ReInit proposal the commit that started this epoch
	// carried; the group may no longer send (Section 11.2).
	reinit *wire.ReInit
}

// cachedProposal is a proposal with its sender and reference.
type cachedProposal struct {
	ref      []byte
	proposal *wire.Proposal
	sender   wire.Sender
	own      bool
	// own update proposals keep the private key of the proposed leaf, and
	// the new signing key if the update rotates it.
	leafPriv  []byte
	newSigner *SignatureKeyPair
}

func (st *epochState) framingEpoch() *framing.Epoch {
	return framing.NewEpoch(st.ctx, st.keys, st.secrets)
}

func (st *epochState) memberKeys(leaf uint32) ([]byte, bool) {
	// RFC 9420, Section 6: a member sender is a leaf of the tree; an index
	// at or beyond the leaf count names nobody (issue 12, finding 1).
	if !treemath.LeafIndex(leaf).InTree(st.tree.LeafCount()) {
		return nil, false
	}
	l := st.tree.Leaf(treemath.LeafIndex(leaf))
	if l == nil {
		return nil, false
	}
	return l.SignatureKey, true
}

// pastEpoch keeps what is needed to read late application messages of an
// epoch that has ended (RFC 9420, Section 9.2 allows keeping the secret tree
// for a while).
type pastEpoch struct {
	epoch uint64
	fe    *framing.Epoch
	tree  *ratchettree.Tree
}

// Group is one member's view of an MLS group. A Group is not safe for
// concurrent use.
type Group struct {
	cfg    *Config
	signer *SignatureKeyPair
	st     *epochState
	past   []*pastEpoch // newest first

	// resumption holds resumption_psk of recent epochs, current included
	// (RFC 9420, Section 8.6).
	resumption []resumptionSecret
	// lastJoin is the newest epoch in which a member joined (by Add or
	// external commit, this member's own join included). A member who
	// joined in epoch J does not hold the resumption PSK of any epoch
	// before J, so an application resumption PSK of such an epoch would cut
	// it off (RFC 9420, Section 8.6: the PSK proves membership in that
	// epoch); the default commit leaves such proposals out (selectCached).
	lastJoin uint64

	pending *pendingCommit // own commit awaiting merge
	removed bool           // a merged commit removed us

	// resuming is the group a ReInit or branch commit of this (new) group
	// resumes: only then may a reinit or branch resumption PSK be used
	// (RFC 9420, Section 12.1.4).
	resuming *Group

	keyUpdates *keyUpdates   // leaf refreshes seen, for the key-update policy (policy.go)
	warnings   []error       // tolerated problems of the tree joined (JoinWarnings, join.go)
	saved      *savedRecords // what was last written to a store (persist.go)
}

type resumptionSecret struct {
	epoch  uint64
	secret []byte
}

// GroupOptions tunes NewGroup.
type GroupOptions struct {
	// Extensions are the initial GroupContext extensions (e.g.
	// required_capabilities, external_senders).
	Extensions []Extension
	// LeafExtensions go into the creator's leaf node.
	LeafExtensions []Extension
	// Capabilities, if set, replaces the creator's default capabilities.
	Capabilities *Capabilities
}

// NewGroup creates a one-member group (RFC 9420, Section 11).
func NewGroup(cfg *Config, groupID []byte, cred Credential, sig *SignatureKeyPair, opts *GroupOptions) (*Group, error) {
	if opts == nil {
		opts = &GroupOptions{}
	}
	s, err := sig.cs.suite()
	if err != nil {
		return nil, err
	}
	if len(groupID) == 0 {
		return nil, errors.New("mls: empty group id")
	}
	// RFC 9420, Section 7.2: the creator's leaf is bounded like a
	// KeyPackage of ours, never valid forever.
	lifetime, err := cfg.ownLifetime()
	if err != nil {
		return nil, err
	}
	leafPriv, leafPub, err := s.GenerateKEMKey(cfg.rand())
	if err != nil {
		return nil, err
	}
	caps := defaultCapabilities(cfg, true)
	if opts.Capabilities != nil {
		caps = opts.Capabilities.toWire()
	}
	leaf := &wire.LeafNode{
		EncryptionKey:  leafPub,
		SignatureKey:   sig.pub,
		Credential:     cred.toWire(),
		Capabilities:   caps,
		LeafNodeSource: wire.LeafNodeSourceKeyPackage,
		Lifetime:       lifetime,
		Extensions:     extensionsToWire(opts.LeafExtensions),
	}
	if err := ensureCapabilities(leaf); err != nil {
		return nil, err
	}
	if leaf.Signature, err = sig.sign("LeafNodeTBS", leaf.TBS(nil, 0)); err != nil {
		return nil, err
	}
	if err := cfg.validator().ValidateCredential(cred, sig.pub); err != nil {
		return nil, invalidCause(ErrCredentialRejected, err, "5.3.1", "own credential")
	}
	tree := ratchettree.New(s, leaf)
	priv, err := ratchettree.NewPrivateState(tree, 0, leafPriv)
	if err != nil {
		return nil, err
	}
	ctx := &wire.GroupContext{
		Version:     wire.ProtocolVersionMLS10,
		CipherSuite: wire.CipherSuite(sig.cs),
		GroupID:     bytes.Clone(groupID),
		Epoch:       0,
		TreeHash:    tree.TreeHash(),
		Extensions:  extensionsToWire(opts.Extensions),
	}
	if err := checkGroupExtensions(ctx.Extensions, tree, cfg); err != nil {
		return nil, err
	}
	if err := checkOwnSupport(ctx.Extensions, leaf); err != nil {
		return nil, err
	}
	ctxBytes, err := codec.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	// Section 11: a fresh random epoch_secret for epoch 0, an empty
	// confirmed transcript hash, and the confirmation tag over it.
	epochSecret, err := readRand(cfg, s.HashSize())
	if err != nil {
		return nil, err
	}
	keys := keyschedule.EpochFromSecret(s, epochSecret)
	clear(epochSecret)
	st := &epochState{s: s, ctx: ctx, ctxBytes: ctxBytes, tree: tree, priv: priv, me: 0, keys: keys}
	if err := st.initSecrets(cfg); err != nil {
		return nil, err
	}
	st.confTag = keys.ConfirmationTag(ctx.ConfirmedTranscriptHash)
	if st.interim, err = keyschedule.InterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, st.confTag); err != nil {
		return nil, err
	}
	g := &Group{cfg: cfg, signer: sig, st: st}
	g.rememberResumption()
	g.startKeyUpdates()
	return g, nil
}

// ensureCapabilities adds the types of the leaf's own extensions to its
// capabilities (RFC 9420, Section 7.2 requires them listed).
func ensureCapabilities(leaf *wire.LeafNode) error {
	for _, e := range leaf.Extensions {
		if e.ExtensionType > 5 && !slices.Contains(leaf.Capabilities.Extensions, e.ExtensionType) {
			leaf.Capabilities.Extensions = append(leaf.Capabilities.Extensions, e.ExtensionType)
		}
	}
	if !slices.Contains(leaf.Capabilities.Credentials, leaf.Credential.CredentialType) {
		leaf.Capabilities.Credentials = append(leaf.Capabilities.Credentials, leaf.Credential.CredentialType)
	}
	return nil
}

// initSecrets builds the epoch's secret tree.
func (st *epochState) initSecrets(cfg *Config) error {
	t, err := secrettree.New(st.s, st.keys.Encryption, st.tree.LeafCount(), secrettree.Config{
		OutOfOrderTolerance: cfg.orDefault().OutOfOrderTolerance,
		MaxForwardDistance:  cfg.orDefault().MaxForwardDistance,
	})
	if err != nil {
		return err
	}
	st.secrets = t
	// RFC 9420, Section 9.2: the secret tree now holds encryption_secret
	// as its root and deletes it once a leaf is derived; no other copy may
	// outlive it, in memory or in saved state.
	st.keys.EraseEncryption()
	return nil
}

// eraseStaged zeroes the secrets of an epoch that was staged on top of
// base and will never be entered (RFC 9420, Section 9.2): its key
// schedule, secret tree, and the path keys base does not share.
func (st *epochState) eraseStaged(base *epochState) {
	if st == nil {
		return
	}
	if st.keys != nil {
		st.keys.Erase()
	}
	if st.secrets != nil {
		st.secrets.Erase()
	}
	if st.priv != nil && (base == nil || st.priv != base.priv) {
		var keep *ratchettree.PrivateState
		if base != nil {
			keep = base.priv
		}
		st.priv.EraseExcept(keep)
	}
}

func (g *Group) rememberResumption() {
	if g.st.keys == nil {
		return
	}
	g.resumption = append([]resumptionSecret{{g.st.ctx.Epoch, bytes.Clone(g.st.keys.Resumption)}}, g.resumption...)
	if n := g.cfg.resumptionPSKs(); len(g.resumption) > n {
		for _, r := range g.resumption[n:] {
			clear(r.secret)
		}
		g.resumption = g.resumption[:n]
	}
}

func (g *Group) resumptionPSK(epoch uint64) ([]byte, bool) {
	for _, r := range g.resumption {
		if r.epoch == epoch {
			return r.secret, true
		}
	}
	return nil, false
}

// GroupID returns the group's identifier.
func (g *Group) GroupID() []byte { return bytes.Clone(g.st.ctx.GroupID) }

// Epoch returns the current epoch number.
func (g *Group) Epoch() uint64 { return g.st.ctx.Epoch }

// CipherSuite returns the group's cipher suite.
func (g *Group) CipherSuite() CipherSuite { return CipherSuite(g.st.ctx.CipherSuite) }

// LeafIndex returns this member's leaf.
func (g *Group) LeafIndex() LeafIndex { return LeafIndex(g.st.me) }

// EpochAuthenticator returns the epoch_authenticator of the current epoch
// (RFC 9420, Section 8.7), for out-of-band comparison between members.
func (g *Group) EpochAuthenticator() []byte { return bytes.Clone(g.st.keys.Authenticator) }

// Export is the MLS-Exporter of the current epoch (RFC 9420, Section 8.5).
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	v, err := g.st.keys.Export(label, context, length)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(v), nil
}

// Extensions returns the GroupContext extensions.
func (g *Group) Extensions() []Extension { return extensionsFromWire(g.st.ctx.Extensions) }

// TreeHash returns the tree hash of the current ratchet tree.
func (g *Group) TreeHash() []byte { return bytes.Clone(g.st.tree.TreeHash()) }

// Active reports whether the group may still be used: false after this
// member was removed or the group was reinitialised.
func (g *Group) Active() bool { return !g.removed && g.st.reinit == nil }

// Member describes one member of the group.
type Member struct {
	Index         LeafIndex
	Credential    Credential
	SignatureKey  []byte
	EncryptionKey []byte
}

// Members lists the current members in leaf order.
func (g *Group) Members() []Member {
	var out []Member
	g.st.tree.Members(func(l treemath.LeafIndex, n *wire.LeafNode) bool {
		out = append(out, Member{Index: LeafIndex(l), Credential: credentialFromWire(n.Credential),
			SignatureKey: bytes.Clone(n.SignatureKey), EncryptionKey: bytes.Clone(n.EncryptionKey)})
		return true
	})
	return out
}

// Member returns the member at leaf l.
func (g *Group) Member(l LeafIndex) (Member, bool) {
	n := g.st.tree.Leaf(treemath.LeafIndex(l))
	if n == nil {
		return Member{}, false
	}
	return Member{Index: l, Credential: credentialFromWire(n.Credential),
		SignatureKey: bytes.Clone(n.SignatureKey), EncryptionKey: bytes.Clone(n.EncryptionKey)}, true
}

// RatchetTree returns the encoded ratchet tree (the ratchet_tree
// extension's data, RFC 9420, Section 12.4.3.3), for sending out of band.
func (g *Group) RatchetTree() ([]byte, error) { return g.st.tree.Encode() }

// policy is the leaf-validation policy of the current GroupContext.
func policyFor(cfg *Config, ctx *wire.GroupContext) *ratchettree.Policy {
	p := &ratchettree.Policy{
		GroupID:     ctx.GroupID,
		Credentials: treeValidator{cfg.validator()},
		Now:         cfg.now(),
		MaxLifetime: cfg.maxLeafLifetime(),
	}
	if rc, ok := requiredCapabilities(ctx.Extensions); ok {
		p.Required = rc
	}
	return p
}

// cloneExtensions copies exts and their data.
func cloneExtensions(exts []wire.Extension) []wire.Extension {
	if len(exts) == 0 {
		return nil
	}
	out := make([]wire.Extension, len(exts))
	for i, e := range exts {
		out[i] = wire.Extension{ExtensionType: e.ExtensionType, ExtensionData: bytes.Clone(e.ExtensionData)}
	}
	return out
}

func findExtension(exts []wire.Extension, t wire.ExtensionType) ([]byte, bool) {
	for _, e := range exts {
		if e.ExtensionType == t {
			return e.ExtensionData, true
		}
	}
	return nil, false
}

func requiredCapabilities(exts []wire.Extension) (*wire.RequiredCapabilities, bool) {
	data, ok := findExtension(exts, wire.ExtensionTypeRequiredCapabilities)
	if !ok {
		return nil, false
	}
	rc, err := wire.Decode[wire.RequiredCapabilities](data)
	if err != nil {
		return nil, false
	}
	return rc, true
}

func externalSenders(exts []wire.Extension) (wire.ExternalSenders, error) {
	data, ok := findExtension(exts, wire.ExtensionTypeExternalSenders)
	if !ok {
		return nil, nil
	}
	es, err := wire.Decode[wire.ExternalSenders](data)
	if err != nil {
		return nil, err
	}
	return *es, nil
}

// ownSupports reports whether this client's own capability list lists v.
// GREASE entries do not count: RFC 9420, Section 13.5 has a client compare
// with a list of "only the capabilities actually supported, without any
// GREASE values"; it lists GREASE values only to exercise its peers.
func ownSupports[T ~uint16](list []T, v T) bool {
	return !isGREASE(uint16(v)) && slices.Contains(list, v)
}

// checkOwnSupport checks that this client, whose leaf is own, supports each
// non-default GroupContext extension in exts and each capability that their
// required_capabilities requires (RFC 9420, Sections 11.1, 12.1.7 and
// 13.5). checkGroupExtensions checks every member's leaf as it claims;
// this checks what the client really supports.
func checkOwnSupport(exts []wire.Extension, own *wire.LeafNode) error {
	if own == nil || !ownSupportCheck {
		return nil
	}
	caps := &own.Capabilities
	for _, e := range exts {
		if e.ExtensionType > 5 && !ownSupports(caps.Extensions, e.ExtensionType) {
			return invalid(ErrInvalidProposal, "12.1.7", "this client does not support group extension %v", e.ExtensionType)
		}
	}
	rc, ok := requiredCapabilities(exts)
	if !ok {
		return nil
	}
	for _, e := range rc.ExtensionTypes {
		if e > 5 && !ownSupports(caps.Extensions, e) {
			return invalid(ErrInvalidProposal, "11.1", "this client lacks required extension %v", e)
		}
	}
	for _, p := range rc.ProposalTypes {
		if p > 7 && !ownSupports(caps.Proposals, p) {
			return invalid(ErrInvalidProposal, "11.1", "this client lacks required proposal %v", p)
		}
	}
	for _, c := range rc.CredentialTypes {
		if !ownSupports(caps.Credentials, c) {
			return invalid(ErrInvalidProposal, "11.1", "this client lacks required credential %v", c)
		}
	}
	return nil
}

// ownSupportCheck is false only in tests that need a member to send what
// checkOwnSupport would stop it from sending.
var ownSupportCheck = true

// ownLeaf is this client's leaf after the commit a, or nil for a
// PublicGroup or a member the commit removes (which need not support what
// the group uses next, Section 12.2).
func (a *applied) ownLeaf(st *epochState) *wire.LeafNode {
	if st.priv == nil || a.selfGone {
		return nil
	}
	return a.tree.Leaf(st.me)
}

// checkOwnProposals checks that this client, whose leaf is own, supports
// each custom proposal type, GREASE entries of its list not counted
// (RFC 9420, Sections 12.2 and 13.5).
func checkOwnProposals(custom []wire.ProposalType, own *wire.LeafNode) error {
	if own == nil || !ownSupportCheck {
		return nil
	}
	for _, t := range custom {
		if !ownSupports(own.Capabilities.Proposals, t) {
			return invalid(ErrInvalidCommit, "12.2", "this client does not support proposal type %v", t)
		}
	}
	return nil
}

// checkGroupExtensions checks GroupContext extensions against the members
// (RFC 9420, Sections 11.1, 12.1.7 and 13.4): each non-default extension and
// each required capability must be supported by every member; the
// external_senders and required_capabilities extensions must decode and
// external senders' credentials must be acceptable.
func checkGroupExtensions(exts []wire.Extension, tree *ratchettree.Tree, cfg *Config) error {
	seen := map[wire.ExtensionType]bool{}
	for _, e := range exts {
		if seen[e.ExtensionType] {
			return invalid(ErrInvalidProposal, "13.4", "duplicate GroupContext extension %v", e.ExtensionType)
		}
		seen[e.ExtensionType] = true
	}
	rc, hasRC := requiredCapabilities(exts)
	if _, present := findExtension(exts, wire.ExtensionTypeRequiredCapabilities); present && !hasRC {
		return invalid(ErrMalformed, "11.1", "required_capabilities does not decode")
	}
	es, err := externalSenders(exts)
	if err != nil {
		return invalid(ErrMalformed, "12.1.8.1", "external_senders does not decode")
	}
	for _, x := range es {
		if err := cfg.validator().ValidateCredential(credentialFromWire(x.Credential), x.SignatureKey); err != nil {
			return invalidCause(ErrCredentialRejected, err, "12.1.8.1", "external sender credential")
		}
	}
	var bad error
	tree.Members(func(l treemath.LeafIndex, n *wire.LeafNode) bool {
		caps := &n.Capabilities
		for _, e := range exts {
			if e.ExtensionType > 5 && !slices.Contains(caps.Extensions, e.ExtensionType) {
				bad = invalid(ErrInvalidProposal, "13.4", "member %d does not support group extension %v", l, e.ExtensionType)
				return false
			}
		}
		if hasRC {
			for _, e := range rc.ExtensionTypes {
				if e > 5 && !slices.Contains(caps.Extensions, e) {
					bad = invalid(ErrInvalidProposal, "11.1", "member %d lacks required extension %v", l, e)
					return false
				}
			}
			for _, p := range rc.ProposalTypes {
				if p > 7 && !slices.Contains(caps.Proposals, p) {
					bad = invalid(ErrInvalidProposal, "11.1", "member %d lacks required proposal %v", l, p)
					return false
				}
			}
			for _, c := range rc.CredentialTypes {
				if !slices.Contains(caps.Credentials, c) {
					bad = invalid(ErrInvalidProposal, "11.1", "member %d lacks required credential %v", l, c)
					return false
				}
			}
		}
		return true
	})
	return bad
}

// String describes the group without secrets.
func (g *Group) String() string {
	return fmt.Sprintf("mls.Group{id=%x epoch=%d leaf=%d members=%d}", g.st.ctx.GroupID, g.st.ctx.Epoch,
		g.st.me, g.st.tree.MemberCount())
}
