package mls

import (
	"bytes"
	"errors"
	"slices"
	"sync"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// StagedCommit is a validated commit that has not been applied: the group
// is still in the old epoch. Inspect it, then MergeStagedCommit to enter the
// new epoch, or drop it.
type StagedCommit struct {
	Committer Sender
	// Epoch is the epoch the commit starts.
	Epoch uint64
	// Added lists new members and their leaves.
	Added []AddedMember
	// Updated lists members whose Update proposals were applied.
	Updated []LeafIndex
	// Removed lists removed members with the leaf they had.
	Removed []RemovedMember
	// PSKs lists the pre-shared keys injected, in order.
	PSKs []*PSKID
	// ReInit is set when the commit reinitialises the group; the group can
	// no longer send once it is merged (RFC 9420, Section 11.2).
	ReInit *ReInitInfo
	// SelfRemoved: this member is removed by the commit.
	SelfRemoved bool
	// PathUpdated: the commit carried an UpdatePath.
	PathUpdated bool
	// External: an external commit (RFC 9420, Section 12.4.3.2).
	External bool
	// Warnings lists what this client tolerated in a received commit: an
	// added KeyPackage whose lifetime no longer contains the current time
	// or is longer than allowed (see Config.StrictLeafLifetimes). Each is
	// a *ValidationError.
	Warnings []error

	base      *epochState
	next      *epochState
	newSigner *SignatureKeyPair
}

// AddedMember is a member added by a commit.
type AddedMember struct {
	Leaf       LeafIndex
	KeyPackage *KeyPackage
}

// RemovedMember is a member removed by a commit.
type RemovedMember struct {
	Leaf       LeafIndex
	Credential Credential
	// LeafNode is the encoded LeafNode the member had.
	LeafNode []byte
}

// ReInitInfo holds the parameters of a committed ReInit.
type ReInitInfo struct {
	GroupID     []byte
	CipherSuite CipherSuite
	Extensions  []Extension
}

// resolved is one proposal of a commit with who proposed it.
type resolved struct {
	p        *wire.Proposal
	sender   wire.Sender
	ref      []byte // nil when sent by value
	cached   *cachedProposal
	byValue  bool
	position int
	// kpChecked: an Add by value, from this client, of a KeyPackage whose
	// group-independent checks (signatures included) passed when parsed.
	kpChecked bool
}

// applied is the outcome of applying a proposal list (RFC 9420, Section 12.3).
type applied struct {
	tree      *ratchettree.Tree
	exts      []wire.Extension
	joiners   []treemath.LeafIndex
	joinerKPs []*wire.KeyPackage
	psks      []wire.PreSharedKeyID
	extInit   *wire.ExternalInit
	reinit    *wire.ReInit
	removed   []RemovedMember
	updated   []LeafIndex
	myUpdate  *cachedProposal // our own Update, applied by someone else
	selfGone  bool
	removedBy map[uint32]bool
	needPath  bool
	resyncOld *wire.LeafNode // the leaf an external resync commit removes
	warnings  []error        // tolerated lifetimes of received Adds
}

// pathRequiredTypes lists the proposal types that force an UpdatePath
// (RFC 9420, Section 12.4 and the "Path Required" column of Section 17.4).
func pathRequired(t wire.ProposalType) bool {
	switch t {
	case wire.ProposalTypeUpdate, wire.ProposalTypeRemove, wire.ProposalTypeExternalInit,
		wire.ProposalTypeGroupContextExtensions:
		return true
	}
	return false
}

// applyProposals validates a commit's proposal list (RFC 9420, Section
// 12.2) and applies it to a copy of the tree and GroupContext extensions in
// the order of Section 12.3. committer is the commit's sender; for an
// external commit it has no leaf yet. received is true for a commit this
// client processes rather than creates: the lifetimes of its Adds are then
// checked as Config.StrictLeafLifetimes says (Section 7.3), while a
// committer always checks them (Section 10.1).
func (g *Group) applyProposals(st *epochState, props []resolved, committer wire.Sender, received bool) (*applied, error) {
	external := committer.SenderType == wire.SenderTypeNewMemberCommit
	// The staged tree needs the tree hash (RFC 9420, Section 7.8). A tree
	// loaded from saved state has none cached (readCore); computed in the
	// copy, it would be lost with the copy, and every commit staged before
	// the next merge would hash the whole tree again. Computed here it is
	// cached in the epoch's tree, which the copy shares: O(1) when warm.
	st.tree.TreeHash()
	a := &applied{tree: st.tree.Clone(), exts: st.ctx.Extensions, removedBy: map[uint32]bool{}}
	a.needPath = len(props) == 0
	var (
		gce     *wire.GroupContextExtensions
		updates []resolved
		removes []resolved
		adds    []resolved
		custom  []wire.ProposalType
		nExtIn  int
	)
	touched := map[uint32]bool{}
	pskSeen := map[string]bool{}
	for _, r := range props {
		p := r.p
		a.needPath = a.needPath || pathRequired(p.ProposalType)
		if external {
			switch p.ProposalType {
			case wire.ProposalTypeExternalInit, wire.ProposalTypeRemove, wire.ProposalTypePSK:
			default:
				return nil, invalid(ErrInvalidCommit, "12.2", "external commit carries a %v proposal", p.ProposalType)
			}
			if !r.byValue {
				return nil, invalid(ErrInvalidCommit, "12.4.3.2", "external commit includes a proposal by reference")
			}
		}
		if r.byValue {
			if err := g.validateProposalChecked(st, p, r.sender, received, r.kpChecked && !received); err != nil {
				return nil, err
			}
		}
		if t := r.sender.SenderType; r.cached != nil && (t == wire.SenderTypeExternal || t == wire.SenderTypeNewMemberProposal) {
			// RFC 9420, Sections 12.1.8 and 12.2: an unauthorized
			// external proposal is invalid, and so is a list holding it.
			if err := g.cfg.authorizeExternal(st.ctx.GroupID, g.proposalInfo(r.cached)); err != nil {
				return nil, err
			}
		}
		switch p.ProposalType {
		case wire.ProposalTypeAdd:
			adds = append(adds, r)
		case wire.ProposalTypeUpdate:
			if r.sender.SenderType != wire.SenderTypeMember {
				return nil, invalid(ErrInvalidProposal, "12.1.2", "Update from a non-member")
			}
			if committer.SenderType == wire.SenderTypeMember && r.sender.LeafIndex == committer.LeafIndex {
				return nil, invalid(ErrInvalidCommit, "12.2", "commit includes the committer's own Update")
			}
			if touched[r.sender.LeafIndex] {
				return nil, invalid(ErrInvalidCommit, "12.2", "several Update/Remove proposals for leaf %d", r.sender.LeafIndex)
			}
			touched[r.sender.LeafIndex] = true
			updates = append(updates, r)
		case wire.ProposalTypeRemove:
			l := p.Remove.Removed
			if committer.SenderType == wire.SenderTypeMember && l == committer.LeafIndex {
				return nil, invalid(ErrInvalidCommit, "12.2", "commit removes the committer")
			}
			if touched[l] {
				return nil, invalid(ErrInvalidCommit, "12.2", "several Update/Remove proposals for leaf %d", l)
			}
			touched[l] = true
			removes = append(removes, r)
		case wire.ProposalTypePSK:
			key := string(pskKey(&p.PreSharedKey.PSK))
			if pskSeen[key] {
				return nil, invalid(ErrInvalidCommit, "12.2", "duplicate PreSharedKeyID")
			}
			pskSeen[key] = true
			a.psks = append(a.psks, p.PreSharedKey.PSK)
		case wire.ProposalTypeReInit:
			if len(props) != 1 {
				return nil, invalid(ErrInvalidCommit, "12.2", "ReInit together with other proposals")
			}
			a.reinit = p.ReInit
		case wire.ProposalTypeExternalInit:
			if !external {
				return nil, invalid(ErrInvalidCommit, "12.2", "ExternalInit in a regular commit")
			}
			nExtIn++
			a.extInit = p.ExternalInit
		case wire.ProposalTypeGroupContextExtensions:
			if gce != nil {
				return nil, invalid(ErrInvalidCommit, "12.2", "several GroupContextExtensions proposals")
			}
			gce = p.GroupContextExtensions
		default:
			custom = append(custom, p.ProposalType)
		}
	}
	if external {
		if nExtIn != 1 {
			return nil, invalid(ErrInvalidCommit, "12.2", "external commit needs exactly one ExternalInit")
		}
		if len(removes) > 1 {
			return nil, invalid(ErrInvalidCommit, "12.2", "external commit removes more than one member")
		}
	}

	// Section 12.3, in order: GroupContextExtensions, Updates, Removes, Adds.
	if gce != nil {
		// The GroupContext keeps them for epochs: copied, so that it
		// does not keep the message they came in.
		a.exts = cloneExtensions(gce.Extensions)
	}
	newCtx := *st.ctx
	newCtx.Extensions = a.exts
	pol := policyFor(g.cfg, &newCtx)
	addPol := pol
	if received {
		addPol = g.cfg.receivedPolicy(pol)
	}
	for _, r := range updates {
		l := treemath.LeafIndex(r.sender.LeafIndex)
		leaf := &r.p.Update.LeafNode
		if !r.byValue {
			// Validated on receipt against this epoch; required
			// capabilities may have changed with a GCE in this commit.
			if err := a.tree.ValidateLeafNode(leaf, wire.LeafNodeSourceUpdate, l, pol); err != nil {
				return nil, err
			}
		}
		if err := a.tree.UpdateLeaf(l, leaf); err != nil {
			return nil, err
		}
		a.updated = append(a.updated, LeafIndex(l))
		if l == st.me && st.priv != nil {
			a.myUpdate = r.cached
		}
	}
	for _, r := range removes {
		l := treemath.LeafIndex(r.p.Remove.Removed)
		old := a.tree.Leaf(l)
		if old == nil {
			return nil, invalid(ErrInvalidProposal, "12.1.3", "Remove of blank leaf %d", l)
		}
		raw, _ := codec.Marshal(old)
		a.removed = append(a.removed, RemovedMember{Leaf: LeafIndex(l), Credential: credentialFromWire(old.Credential), LeafNode: raw})
		a.removedBy[uint32(l)] = true
		if external {
			a.resyncOld = old
		}
		if l == st.me && st.priv != nil {
			a.selfGone = true
		}
		if err := a.tree.RemoveLeaf(l); err != nil {
			return nil, err
		}
	}
	for _, r := range adds {
		kp := &r.p.Add.KeyPackage
		// Every Add's KeyPackage, signatures included, was validated
		// (validateKeyPackage) above if it came by value, and when it
		// was received if by reference; the checks against the tree
		// are run again here, on the tree with the earlier proposals
		// applied.
		if err := a.tree.ValidateKeyPackageLeaf(&kp.LeafNode, addPol); err != nil {
			return nil, invalidCause(ErrInvalidProposal, err, "12.2", "Add")
		}
		if kp.CipherSuite != st.ctx.CipherSuite || kp.Version != st.ctx.Version {
			return nil, invalid(ErrInvalidKeyPackage, "10.1", "KeyPackage suite or version")
		}
		l, err := a.tree.AddLeaf(&kp.LeafNode)
		if err != nil {
			return nil, err
		}
		if received && !g.cfg.orDefault().StrictLeafLifetimes {
			if msg := g.cfg.lifetimeProblem(&kp.LeafNode); msg != "" {
				a.warnings = append(a.warnings, invalid(ErrInvalidKeyPackage, "10.1", "Add at leaf %d: %s (tolerated)", l, msg))
			}
		}
		a.joiners = append(a.joiners, l)
		a.joinerKPs = append(a.joinerKPs, kp)
	}
	// Extensions must be supported by every member (all of them after a
	// GroupContextExtensions proposal, else the new ones).
	if gce != nil {
		if err := checkGroupExtensions(a.exts, a.tree, g.cfg); err != nil {
			return nil, err
		}
		if err := checkOwnSupport(a.exts, a.ownLeaf(st)); err != nil {
			return nil, err
		}
	} else if len(a.joiners) > 0 {
		if err := checkJoinerExtensions(a.exts, a.tree, a.joiners); err != nil {
			return nil, err
		}
	}
	// Custom proposals must be supported by every member that stays
	// (Section 12.2).
	if len(custom) > 0 {
		var bad error
		joined := map[treemath.LeafIndex]bool{}
		for _, j := range a.joiners {
			joined[j] = true
		}
		a.tree.Members(func(l treemath.LeafIndex, n *wire.LeafNode) bool {
			if joined[l] {
				return true
			}
			for _, t := range custom {
				if !slices.Contains(n.Capabilities.Proposals, t) {
					bad = invalid(ErrInvalidCommit, "12.2", "member %d does not support proposal type %v", l, t)
					return false
				}
			}
			return true
		})
		if bad != nil {
			return nil, bad
		}
		if err := checkOwnProposals(custom, a.ownLeaf(st)); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func checkJoinerExtensions(exts []wire.Extension, tree *ratchettree.Tree, joiners []treemath.LeafIndex) error {
	for _, j := range joiners {
		n := tree.Leaf(j)
		for _, e := range exts {
			if e.ExtensionType > 5 && !slices.Contains(n.Capabilities.Extensions, e.ExtensionType) {
				return invalid(ErrInvalidProposal, "12.1.1", "new member does not support group extension %v", e.ExtensionType)
			}
		}
	}
	return nil
}

// pskKey identifies a PreSharedKeyID for duplicate detection.
func pskKey(id *wire.PreSharedKeyID) []byte {
	b, _ := codec.Marshal(id)
	return b
}

// resolvePSKs looks up the secrets of the PSKs a commit or Welcome names
// (RFC 9420, Section 8.4).
func (g *Group) resolvePSKs(ids []wire.PreSharedKeyID, other *Group) ([]keyschedule.PSK, error) {
	var out []keyschedule.PSK
	for _, id := range ids {
		var secret []byte
		var ok bool
		switch id.PSKType {
		case wire.PSKTypeExternal:
			secret, ok = g.cfg.externalPSK(id.PSKID)
		case wire.PSKTypeResumption:
			src := g
			if other != nil && bytes.Equal(other.st.ctx.GroupID, id.PSKGroupID) {
				src = other
			}
			if src != nil && src.st != nil && bytes.Equal(src.st.ctx.GroupID, id.PSKGroupID) {
				secret, ok = src.resumptionPSK(id.PSKEpoch)
			}
		}
		if !ok {
			return nil, invalid(ErrMissingPSK, "8.4", "PSK not available")
		}
		out = append(out, keyschedule.PSK{ID: id, Value: secret})
	}
	return out, nil
}

// resolveCommitProposals turns a received commit's ProposalOrRef list into
// proposals with senders, looking references up in this epoch's cache.
func (g *Group) resolveCommitProposals(st *epochState, c *wire.Commit, committer wire.Sender) ([]resolved, error) {
	out := make([]resolved, 0, len(c.Proposals))
	for i, por := range c.Proposals {
		switch por.Type {
		case wire.ProposalOrRefTypeProposal:
			out = append(out, resolved{p: por.Proposal, sender: committer, byValue: true, position: i})
		case wire.ProposalOrRefTypeReference:
			var found *cachedProposal
			for _, cp := range st.proposals {
				if bytes.Equal(cp.ref, por.Reference) {
					found = cp
					break
				}
			}
			if found == nil {
				return nil, invalid(ErrInvalidCommit, "12.4", "commit references an unknown proposal")
			}
			out = append(out, resolved{p: found.proposal, sender: found.sender, ref: found.ref, cached: found, position: i})
		default:
			return nil, invalid(ErrMalformed, "12.4", "ProposalOrRef type")
		}
	}
	return out, nil
}

// stageCommit validates a received commit (RFC 9420, Section 12.4.2) and
// computes the next epoch without changing the group.
func (g *Group) stageCommit(ac *wire.AuthenticatedContent) (*StagedCommit, error) {
	st := g.st
	c := ac.Content.Commit
	committer := ac.Content.Sender
	switch committer.SenderType {
	case wire.SenderTypeMember, wire.SenderTypeNewMemberCommit:
	default:
		return nil, invalid(ErrInvalidCommit, "12.4", "commit from a %v sender", committer.SenderType)
	}
	if st.reinit != nil {
		// RFC 9420, Section 11.2: after the commit covering a ReInit the
		// old group is done; only the new group may continue it. A later
		// commit would reactivate it.
		return nil, invalid(ErrGroupInactive, "11.2", "commit in a group reinitialised by its last commit")
	}
	if g.pending != nil {
		// Another member's commit for this epoch wins over ours if the
		// delivery service ordered it first; ours is discarded on merge.
	}
	props, err := g.resolveCommitProposals(st, c, committer)
	if err != nil {
		return nil, err
	}
	a, err := g.applyProposals(st, props, committer, true)
	if err != nil {
		return nil, err
	}
	if a.needPath && c.Path == nil {
		return nil, invalid(ErrInvalidCommit, "12.4", "commit lacks a required UpdatePath")
	}
	// RFC 9420, Section 12.4.2: every PSK the commit names must be
	// available, checked before the tree changes and by every member,
	// including one the commit removes (which would otherwise accept a
	// commit the rest of the group refuses). A public view holds no PSKs.
	var psks []keyschedule.PSK
	if st.keys != nil {
		if psks, err = g.resolvePSKs(a.psks, nil); err != nil {
			return nil, err
		}
	}
	external := committer.SenderType == wire.SenderTypeNewMemberCommit
	sc := &StagedCommit{Committer: senderFromWire(committer), Epoch: st.ctx.Epoch + 1, Removed: a.removed,
		Updated: a.updated, External: external, PathUpdated: c.Path != nil, Warnings: a.warnings, base: st}
	for i, j := range a.joiners {
		sc.Added = append(sc.Added, AddedMember{Leaf: LeafIndex(j), KeyPackage: keyPackageFromWire(a.joinerKPs[i])})
	}
	for i := range a.psks {
		sc.PSKs = append(sc.PSKs, pskIDFromWire(&a.psks[i]))
	}
	if a.reinit != nil {
		sc.ReInit = &ReInitInfo{GroupID: bytes.Clone(a.reinit.GroupID), CipherSuite: CipherSuite(a.reinit.CipherSuite),
			Extensions: extensionsFromWire(a.reinit.Extensions)}
	}
	// Our private view of the tree after the proposals. A member the
	// commit removes has none: it cannot derive the new epoch, but it
	// still validates the path as a public view would (RFC 9420,
	// Section 12.4.2), or anyone could make it leave with a commit the
	// rest of the group refuses.
	var priv *ratchettree.PrivateState
	if st.priv != nil && !a.selfGone {
		priv = st.priv.Clone()
		if a.myUpdate != nil {
			if priv, err = ratchettree.NewPrivateState(a.tree, st.me, a.myUpdate.leafPriv); err != nil {
				return nil, err
			}
			sc.newSigner = a.myUpdate.newSigner
		} else {
			priv.Prune(a.tree)
		}
	}

	provisional := *st.ctx
	provisional.Epoch = st.ctx.Epoch + 1
	provisional.Extensions = a.exts
	pol := policyFor(g.cfg, &provisional)
	var commitSecret []byte
	sender := treemath.LeafIndex(committer.LeafIndex)
	if c.Path != nil {
		if external {
			sender = a.tree.FreeLeaf()
		} else if old := a.tree.Leaf(sender); old != nil {
			if err := validateSuccessor(g.cfg.validator(), credentialFromWire(old.Credential),
				credentialFromWire(c.Path.LeafNode.Credential)); err != nil {
				return nil, err
			}
		}
		if external && a.resyncOld != nil {
			if err := validateSuccessor(g.cfg.validator(), credentialFromWire(a.resyncOld.Credential),
				credentialFromWire(c.Path.LeafNode.Credential)); err != nil {
				return nil, err
			}
		}
		rp, err := a.tree.ApplyUpdatePath(sender, c.Path, a.joiners, &provisional, priv, pol)
		if err != nil {
			return nil, err
		}
		if rp != nil {
			// RFC 9420, Section 9.2: the path secret and commit_secret
			// are consumed by this commit, whatever its outcome.
			defer rp.Erase()
			commitSecret = rp.CommitSecret
			priv = rp.Private
		}
	}
	if external {
		// The signature was checked with the path's leaf key by framing;
		// it must be the key of the leaf the joiner now occupies.
		if c.Path == nil || !bytes.Equal(c.Path.LeafNode.SignatureKey, a.tree.Leaf(sender).SignatureKey) {
			return nil, invalid(ErrInvalidCommit, "12.4.3.2", "external commit signer")
		}
	}
	if a.selfGone {
		// The commit is signed and authenticated by the old epoch's keys
		// and its proposals and path are valid: all a removed member can
		// check (Section 12.4.2, last paragraph).
		sc.SelfRemoved = true
		return sc, nil
	}
	provisional.TreeHash = a.tree.TreeHash()

	confirmed, interim, err := keyschedule.TranscriptHashes(st.s, st.interim, ac)
	if err != nil {
		return nil, err
	}
	next := &epochState{s: st.s, tree: a.tree, priv: priv, me: st.me, interim: interim,
		confTag: bytes.Clone(ac.Auth.ConfirmationTag), reinit: a.reinit}
	newCtx := provisional
	newCtx.ConfirmedTranscriptHash = confirmed
	next.ctx = &newCtx
	if next.ctxBytes, err = codec.Marshal(&newCtx); err != nil {
		return nil, err
	}
	if st.keys == nil {
		// A public view: no key schedule, so the confirmation tag cannot
		// be checked (RFC 9420, Section 6.2).
		sc.next = next
		return sc, nil
	}
	initSecret := st.keys.Init
	if a.extInit != nil {
		if initSecret, err = g.externalInitSecret(st, a.extInit.KEMOutput); err != nil {
			return nil, err
		}
		// RFC 9420, Section 9.2: the init_secret an external joiner sent
		// is consumed by this key schedule.
		defer clear(initSecret)
	}
	pskSecret, err := keyschedule.PSKSecret(st.s, psks)
	if err != nil {
		return nil, err
	}
	joiner := keyschedule.NewJoinerSecret(st.s, initSecret, commitSecret, next.ctxBytes)
	member := joiner.WithPSK(pskSecret)
	next.keys = member.Epoch(next.ctxBytes)
	pskSecret.Erase()
	joiner.Erase()
	member.Erase()
	if !next.keys.VerifyConfirmationTag(confirmed, ac.Auth.ConfirmationTag) {
		next.eraseStaged(st)
		return nil, invalid(ErrInvalidConfirmationTag, "12.4.2", "confirmation tag")
	}
	if err := next.initSecrets(g.cfg); err != nil {
		next.eraseStaged(st)
		return nil, err
	}
	sc.next = next
	return sc, nil
}

// MergeStagedCommit enters the epoch a staged commit starts. Any pending
// own commit of the old epoch is discarded: the delivery service ordered
// the other one first.
func (g *Group) MergeStagedCommit(sc *StagedCommit) error {
	if sc == nil || sc.base != g.st {
		return errors.New("mls: staged commit is not for the group's current epoch")
	}
	if g.pending != nil && g.pending.staged != sc {
		g.DiscardPendingCommit()
	}
	g.pending = nil
	if sc.SelfRemoved {
		g.removed = true
		g.retire(g.st)
		return nil
	}
	g.noteCommit(sc)
	g.enter(sc.next)
	if len(sc.Added) > 0 || sc.External {
		g.lastJoin = sc.Epoch
	}
	if sc.newSigner != nil {
		g.signer = sc.newSigner
	}
	return nil
}

// enter makes next the current epoch and keeps the old one's message keys
// for late application messages (RFC 9420, Section 9.2).
func (g *Group) enter(next *epochState) {
	old := g.st
	g.st = next
	g.retire(old)
	g.rememberResumption()
}

func (g *Group) retire(old *epochState) {
	old.proposals = nil
	if old.keys == nil {
		return // a public view holds no secrets
	}
	keep := g.cfg.pastEpochs()
	if keep > 0 {
		// The past epoch keeps its own copy of sender_data_secret, since
		// the key schedule is erased below and late application messages
		// need it (RFC 9420, Sections 6.3.2 and 9.2); it keeps no
		// membership key, as handshakes of past epochs are refused.
		fe := old.framingEpoch()
		fe.SenderDataSecret = old.keys.SenderData.Clone()
		fe.MembershipKey = nil
		g.past = append([]*pastEpoch{{epoch: old.ctx.Epoch, fe: fe, tree: old.tree}}, g.past...)
	} else {
		old.secrets.Erase()
	}
	for len(g.past) > keep {
		last := g.past[len(g.past)-1]
		last.fe.Tree.Erase()
		last.fe.SenderDataSecret.Erase()
		g.past = g.past[:len(g.past)-1]
	}
	old.keys.Erase()
	old.proposals = nil
}

// externalInitSecret derives init_secret from an ExternalInit's kem_output
// with the group's external private key (RFC 9420, Section 8.3).
func (g *Group) externalInitSecret(st *epochState, kemOutput []byte) ([]byte, error) {
	priv, _, err := st.keys.ExternalKeyPair()
	if err != nil {
		return nil, err
	}
	defer priv.Erase()
	secret, err := st.s.HPKEExportReceiver(priv, kemOutput, nil, []byte("MLS 1.0 external init secret"), st.s.HashSize())
	if err != nil {
		return nil, invalidCause(ErrInvalidCommit, err, "8.3", "external init")
	}
	return secret, nil
}

// Proposal is a proposal to include by value in a commit.
type Proposal struct {
	p *wire.Proposal
	// pskResumption / pskExternal defer nonce generation to commit time.

	kpChecked bool // an Add of a KeyPackage whose verify() passed (KeyPackage.checked)
}

// AddProposal adds kp's client.
func AddProposal(kp *KeyPackage) *Proposal {
	return &Proposal{p: &wire.Proposal{ProposalType: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp.w}}, kpChecked: kp.checked}
}

// RemoveProposal removes the member at leaf l.
func RemoveProposal(l LeafIndex) *Proposal {
	return &Proposal{p: &wire.Proposal{ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(l)}}}
}

// ExternalPSKProposal injects the external PSK id.
func ExternalPSKProposal(id []byte) *Proposal {
	return &Proposal{p: &wire.Proposal{ProposalType: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{
		PSK: wire.PreSharedKeyID{PSKType: wire.PSKTypeExternal, PSKID: bytes.Clone(id)}}}}
}

// ResumptionPSKProposal injects the resumption PSK of this group's epoch.
func ResumptionPSKProposal(groupID []byte, epoch uint64) *Proposal {
	return &Proposal{p: &wire.Proposal{ProposalType: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{
		PSK: wire.PreSharedKeyID{PSKType: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageApplication,
			PSKGroupID: bytes.Clone(groupID), PSKEpoch: epoch}}}}
}

// GroupContextExtensionsProposal replaces the GroupContext extensions.
func GroupContextExtensionsProposal(exts []Extension) *Proposal {
	return &Proposal{p: &wire.Proposal{ProposalType: wire.ProposalTypeGroupContextExtensions,
		GroupContextExtensions: &wire.GroupContextExtensions{Extensions: extensionsToWire(exts)}}}
}

// ReInitProposal reinitialises the group.
func ReInitProposal(groupID []byte, cs CipherSuite, exts []Extension) *Proposal {
	return &Proposal{p: &wire.Proposal{ProposalType: wire.ProposalTypeReInit, ReInit: &wire.ReInit{
		GroupID: bytes.Clone(groupID), Version: wire.ProtocolVersionMLS10, CipherSuite: wire.CipherSuite(cs),
		Extensions: extensionsToWire(exts)}}}
}

// CustomProposal is an application-defined proposal with an opaque body.
func CustomProposal(t ProposalType, data []byte) *Proposal {
	return &Proposal{p: &wire.Proposal{ProposalType: wire.ProposalType(t), Unknown: bytes.Clone(data)}}
}

// CommitOptions tunes Commit.
type CommitOptions struct {
	// Proposals are included by value, after every valid proposal cached in
	// this epoch (which are included by reference).
	Proposals []*Proposal
	// OnlyInline leaves the cached proposals out.
	OnlyInline bool
	// OmitPath leaves the UpdatePath out when no proposal requires it
	// (RFC 9420, Section 12.4). By default a path is always sent, for
	// post-compromise security.
	OmitPath bool
	// RatchetTreeOutOfBand leaves the ratchet_tree extension out of the
	// GroupInfo (the Welcome's and CommitResult.GroupInfo); joiners then
	// need the tree from elsewhere.
	RatchetTreeOutOfBand bool
	// GroupInfo asks for CommitResult.GroupInfo, the signed GroupInfo of
	// the new epoch (what a delivery service keeps for external joins).
	// With the ratchet tree in it, building it costs an encoding of the
	// whole tree and a signature over it, linear in the group, so a commit
	// builds it only when asked (or when a Welcome needs it).
	GroupInfo bool
	// ExternalPub adds the external_pub extension to the returned GroupInfo.
	ExternalPub bool
	// AuthenticatedData is sent unencrypted but authenticated.
	AuthenticatedData []byte
	// Credential and Signer rotate this member's credential and signature
	// key in the commit's path.
	Credential *Credential
	Signer     *SignatureKeyPair
	// WireFormat overrides the Config's handshake choice: 0 for the
	// default, or WireFormatPublic / WireFormatPrivate.
	PublicMessage *bool
}

// CommitResult is what Commit produces. The group stays in the old epoch
// until MergePendingCommit.
type CommitResult struct {
	Commit  []byte // MLSMessage
	Welcome []byte // MLSMessage, nil when nobody was added
	// GroupInfo is the MLSMessage GroupInfo for the new epoch, with the
	// ratchet tree unless RatchetTreeOutOfBand; nil unless
	// CommitOptions.GroupInfo asked for it.
	GroupInfo []byte
	Staged    *StagedCommit
	// Dropped lists the cached proposals the commit left out, each with
	// the reason (RFC 9420, Section 12.4).
	Dropped []DroppedProposal
}

type pendingCommit struct {
	staged *StagedCommit
}

// Commit creates a commit of the cached proposals plus opts.Proposals
// (RFC 9420, Section 12.4.1) and holds the new epoch pending until
// MergePendingCommit or DiscardPendingCommit.
func (g *Group) Commit(opts *CommitOptions) (*CommitResult, error) {
	res, err := g.commit(opts)
	return res, classify(err)
}

// DroppedProposal is a cached proposal that Commit left out because the
// commit could not validly include it (RFC 9420, Section 12.4: the
// committer includes the valid proposals it has, as long as the list stays
// valid), with the reason: a typed error (*ValidationError, errors.Is
// against the sentinels).
type DroppedProposal struct {
	Proposal *ProposalInfo
	Reason   error
}

// selectCached picks the cached proposals a commit should include by
// reference and reports the others with the reason: own Updates (the path
// replaces them), proposals that would make the list invalid (a Remove wins
// over an Update of the same leaf, Section 12.2; duplicates; a ReInit when
// other proposals exist), unauthorized external proposals (Section
// 12.1.8), and PSKs this client does not have (Section 8.4). What only the
// whole list reveals is left to fitCached.
func (g *Group) selectCached(st *epochState) ([]resolved, []DroppedProposal) {
	var out []resolved
	var dropped []DroppedProposal
	drop := func(cp *cachedProposal, reason error) {
		dropped = append(dropped, DroppedProposal{Proposal: g.proposalInfo(cp), Reason: classify(reason)})
	}
	removed := map[uint32]bool{}
	for _, cp := range st.proposals {
		if cp.proposal.ProposalType == wire.ProposalTypeRemove {
			removed[cp.proposal.Remove.Removed] = true
		}
	}
	updated := map[uint32]bool{}
	psks := map[string]bool{}
	gce := false
	for _, cp := range st.proposals {
		p := cp.proposal
		if t := cp.sender.SenderType; t == wire.SenderTypeExternal || t == wire.SenderTypeNewMemberProposal {
			if err := g.cfg.authorizeExternal(st.ctx.GroupID, g.proposalInfo(cp)); err != nil {
				drop(cp, err)
				continue
			}
		}
		switch p.ProposalType {
		case wire.ProposalTypeUpdate:
			l := cp.sender.LeafIndex
			switch {
			case cp.own:
				drop(cp, invalid(ErrInvalidCommit, "12.2", "the committer's own Update (its UpdatePath replaces it)"))
				continue
			case removed[l]:
				drop(cp, invalid(ErrInvalidCommit, "12.2", "Update of leaf %d, which a Remove wins over", l))
				continue
			case updated[l]:
				drop(cp, invalid(ErrInvalidCommit, "12.2", "a second Update of leaf %d", l))
				continue
			}
			updated[l] = true
		case wire.ProposalTypeRemove:
			if p.Remove.Removed == uint32(st.me) {
				drop(cp, invalid(ErrInvalidCommit, "12.2", "Remove of the committer"))
				continue
			}
			if removed[p.Remove.Removed] && updatedOrSeen(out, p.Remove.Removed) {
				drop(cp, invalid(ErrInvalidCommit, "12.2", "a second Remove of leaf %d", p.Remove.Removed))
				continue
			}
		case wire.ProposalTypePSK:
			k := string(pskKey(&p.PreSharedKey.PSK))
			if psks[k] {
				drop(cp, invalid(ErrInvalidCommit, "12.2", "duplicate PreSharedKeyID"))
				continue
			}
			if _, err := g.resolvePSKs([]wire.PreSharedKeyID{p.PreSharedKey.PSK}, g.resuming); err != nil {
				drop(cp, err)
				continue
			}
			if err := g.cutsOffJoiners(&p.PreSharedKey.PSK, g.lastJoin); err != nil {
				drop(cp, err)
				continue
			}
			psks[k] = true
		case wire.ProposalTypeGroupContextExtensions:
			if gce {
				drop(cp, invalid(ErrInvalidCommit, "12.2", "several GroupContextExtensions proposals"))
				continue
			}
			gce = true
		}
		out = append(out, resolved{p: p, sender: cp.sender, ref: cp.ref, cached: cp})
	}
	if len(out) > 1 {
		out = slices.DeleteFunc(out, func(r resolved) bool {
			if r.p.ProposalType != wire.ProposalTypeReInit {
				return false
			}
			drop(r.cached, invalid(ErrInvalidCommit, "12.2", "ReInit together with other proposals"))
			return true
		})
	}
	return dropUnsupported(st, out, dropped, g)
}

// cutsOffJoiners refuses, for the default commit, an application
// resumption PSK of this group from an epoch before joined: the members
// who joined in epoch joined or later never held it, so a commit injecting
// it is one they cannot process (RFC 9420, Section 8.6: the PSK proves
// membership in that epoch). Someone else's proposal must not cut members
// off through this client's commit; the committer's own explicit
// proposals are its choice.
func (g *Group) cutsOffJoiners(id *wire.PreSharedKeyID, joined uint64) error {
	if id.PSKType != wire.PSKTypeResumption || id.Usage != wire.ResumptionPSKUsageApplication ||
		!bytes.Equal(id.PSKGroupID, g.st.ctx.GroupID) || id.PSKEpoch >= joined {
		return nil
	}
	return invalid(ErrMissingPSK, "8.6", "resumption PSK of epoch %d, which members who joined in epoch %d never held", id.PSKEpoch, joined)
}

// fitCached finds, when the list of cached plus inline proposals is
// invalid, which cached proposals to leave out (RFC 9420, Section 12.4: a
// committer never fails because of someone else's proposal): it adds the
// cached ones in order, keeping each that leaves the list valid. The
// inline proposals are the caller's own, so an invalid inline list fails.
// It costs one list validation per cached proposal, and runs only when the
// whole list did not validate.
func (g *Group) fitCached(st *epochState, cached, inline []resolved, me wire.Sender) ([]resolved, []DroppedProposal, error) {
	if _, err := g.applyProposals(st, inline, me, false); err != nil {
		return nil, nil, err
	}
	var kept []resolved
	var dropped []DroppedProposal
	for _, r := range cached {
		trial := append(append(slices.Clip(kept), r), inline...)
		if _, err := g.applyProposals(st, trial, me, false); err != nil {
			dropped = append(dropped, DroppedProposal{Proposal: g.proposalInfo(r.cached), Reason: classify(err)})
			continue
		}
		kept = append(kept, r)
	}
	return kept, dropped, nil
}

// dropUnsupported leaves out cached GroupContextExtensions and custom
// proposals that a member staying in the group does not support. Such a
// proposal is invalid (RFC 9420, Sections 12.1.7 and 12.2), and the
// committer includes only valid ones (Section 12.4); keeping it would make
// every Commit fail, and Encrypt with it, until one left the cache out.
// Support is judged after the list's Updates and Removes; the full list is
// still validated by applyProposals.
func dropUnsupported(st *epochState, rs []resolved, dropped []DroppedProposal, g *Group) ([]resolved, []DroppedProposal) {
	cfg := g.cfg
	check := false
	for _, r := range rs {
		t := r.p.ProposalType
		check = check || t == wire.ProposalTypeGroupContextExtensions || t < 1 || t > 7
	}
	if !check {
		return rs, dropped
	}
	staying := st.tree.Clone()
	for _, r := range rs {
		switch r.p.ProposalType {
		case wire.ProposalTypeUpdate:
			_ = staying.UpdateLeaf(treemath.LeafIndex(r.sender.LeafIndex), &r.p.Update.LeafNode)
		case wire.ProposalTypeRemove:
			_ = staying.RemoveLeaf(treemath.LeafIndex(r.p.Remove.Removed))
		}
	}
	rs = slices.DeleteFunc(rs, func(r resolved) bool {
		t := r.p.ProposalType
		var reason error
		switch {
		case t == wire.ProposalTypeGroupContextExtensions:
			reason = checkGroupExtensions(r.p.GroupContextExtensions.Extensions, staying, cfg)
			if reason == nil {
				reason = checkOwnSupport(r.p.GroupContextExtensions.Extensions, staying.Leaf(st.me))
			}
		case t < 1 || t > 7:
			// Section 13.5: our own GREASE entries do not count as support.
			if reason = checkOwnProposals([]wire.ProposalType{t}, staying.Leaf(st.me)); reason != nil {
				break
			}
			staying.Members(func(l treemath.LeafIndex, n *wire.LeafNode) bool {
				if !slices.Contains(n.Capabilities.Proposals, t) {
					reason = invalid(ErrInvalidCommit, "12.2", "member %d does not support proposal type %v", l, t)
				}
				return reason == nil
			})
		}
		if reason != nil {
			dropped = append(dropped, DroppedProposal{Proposal: g.proposalInfo(r.cached), Reason: classify(reason)})
		}
		return reason != nil
	})
	return rs, dropped
}

func updatedOrSeen(rs []resolved, leaf uint32) bool {
	for _, r := range rs {
		if r.p.ProposalType == wire.ProposalTypeRemove && r.p.Remove.Removed == leaf {
			return true
		}
	}
	return false
}

func (g *Group) commit(opts *CommitOptions) (*CommitResult, error) {
	if opts == nil {
		opts = &CommitOptions{}
	}
	if err := g.checkCanSend(); err != nil {
		return nil, err
	}
	if g.pending != nil {
		return nil, ErrPendingCommit
	}
	st := g.st
	me := wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: uint32(st.me)}
	var cached, inline []resolved
	var dropped []DroppedProposal
	if !opts.OnlyInline {
		cached, dropped = g.selectCached(st)
	}
	for _, p := range opts.Proposals {
		wp := *p.p
		if wp.ProposalType == wire.ProposalTypePSK {
			psk := *wp.PreSharedKey
			if len(psk.PSK.PSKNonce) == 0 {
				nonce, err := readRand(g.cfg, st.s.HashSize())
				if err != nil {
					return nil, err
				}
				psk.PSK.PSKNonce = nonce
			}
			wp.PreSharedKey = &psk
		}
		inline = append(inline, resolved{p: &wp, sender: me, byValue: true, kpChecked: p.kpChecked})
	}
	if slices.ContainsFunc(append(slices.Clip(cached), inline...), func(r resolved) bool { return r.p.ProposalType == wire.ProposalTypeAdd }) {
		// The members this commit adds hold no resumption PSK of this
		// group at all.
		cached = slices.DeleteFunc(cached, func(r resolved) bool {
			if r.p.ProposalType != wire.ProposalTypePSK {
				return false
			}
			err := g.cutsOffJoiners(&r.p.PreSharedKey.PSK, st.ctx.Epoch+1)
			if err != nil {
				dropped = append(dropped, DroppedProposal{Proposal: g.proposalInfo(r.cached), Reason: classify(err)})
			}
			return err != nil
		})
	}
	props := append(slices.Clip(cached), inline...)
	a, err := g.applyProposals(st, props, me, false)
	if err != nil && len(cached) > 0 {
		// A cached proposal makes the list invalid: leave out what
		// cannot be included, and report it (RFC 9420, Section 12.4).
		var more []DroppedProposal
		if cached, more, err = g.fitCached(st, cached, inline, me); err != nil {
			return nil, err
		}
		dropped = append(dropped, more...)
		props = append(slices.Clip(cached), inline...)
		a, err = g.applyProposals(st, props, me, false)
	}
	if err != nil {
		return nil, err
	}
	if a.selfGone {
		return nil, invalid(ErrInvalidCommit, "12.2", "commit removes the committer")
	}
	commit := &wire.Commit{}
	for _, r := range props {
		if r.byValue {
			commit.Proposals = append(commit.Proposals, wire.ProposalOrRef{Type: wire.ProposalOrRefTypeProposal, Proposal: r.p})
		} else {
			commit.Proposals = append(commit.Proposals, wire.ProposalOrRef{Type: wire.ProposalOrRefTypeReference, Reference: r.ref})
		}
	}
	provisional := *st.ctx
	provisional.Epoch = st.ctx.Epoch + 1
	provisional.Extensions = a.exts

	priv := st.priv.Clone()
	priv.Prune(a.tree)
	var commitSecret []byte
	var created *ratchettree.CreatedPath
	// RFC 9420, Section 9.2: the path secrets and commit_secret are used
	// by this commit's Welcome and key schedule, then erased.
	defer func() {
		if created != nil {
			created.Erase()
		}
	}()
	signer := g.signer
	withPath := a.needPath || !opts.OmitPath || opts.Signer != nil || opts.Credential != nil
	if withPath {
		leaf, _, newSigner, err := g.freshLeaf(wire.LeafNodeSourceCommit, opts.Credential, opts.Signer)
		if err != nil {
			return nil, err
		}
		created, err = a.tree.CreateUpdatePath(&ratchettree.PathParams{
			Sender: st.me, Leaf: leaf, Signer: newSigner.signer, GroupContext: &provisional,
			Joiners: a.joiners, Rand: g.cfg.rand(),
		})
		if err != nil {
			return nil, err
		}
		commit.Path = created.Path
		commitSecret = created.CommitSecret
		priv = created.Private
		signer = newSigner
	}
	provisional.TreeHash = a.tree.TreeHash()

	wf := g.handshakeWireFormat()
	if opts.PublicMessage != nil {
		wf = wire.WireFormatPrivateMessage
		if *opts.PublicMessage {
			wf = wire.WireFormatPublicMessage
		}
	}
	content := &wire.FramedContent{
		GroupID: st.ctx.GroupID, Epoch: st.ctx.Epoch, Sender: me,
		AuthenticatedData: bytes.Clone(opts.AuthenticatedData),
		ContentType:       wire.ContentTypeCommit, Commit: commit,
	}
	// The Commit is encoded once, here: the signature's TBS, the confirmed
	// transcript hash and the PrivateMessage copy these bytes instead of
	// encoding again a commit that, on a sparse tree, carries a ciphertext
	// per member.
	commitBytes, err := codec.Marshal(commit)
	if err != nil {
		return nil, err
	}
	content.SetReceivedBody(commitBytes)
	// The commit is signed with the key that is in the tree now (the old
	// one if this commit rotates it, RFC 9420, Section 6.1).
	ac, err := framing.Sign(g.signer.signer, wf, content, st.ctx)
	if err != nil {
		return nil, err
	}
	confirmed, err := keyschedule.ConfirmedTranscriptHash(st.s, st.interim, ac)
	if err != nil {
		return nil, err
	}
	newCtx := provisional
	newCtx.ConfirmedTranscriptHash = confirmed
	next := &epochState{s: st.s, tree: a.tree, priv: priv, me: st.me, ctx: &newCtx, reinit: a.reinit}
	if next.ctxBytes, err = codec.Marshal(&newCtx); err != nil {
		return nil, err
	}
	psks, err := g.resolvePSKs(a.psks, g.resuming)
	if err != nil {
		return nil, err
	}
	pskSecret, err := keyschedule.PSKSecret(st.s, psks)
	if err != nil {
		return nil, err
	}
	joiner := keyschedule.NewJoinerSecret(st.s, st.keys.Init, commitSecret, next.ctxBytes)
	member := joiner.WithPSK(pskSecret)
	pskSecret.Erase()
	defer joiner.Erase()
	defer member.Erase()
	next.keys = member.Epoch(next.ctxBytes)
	staged := false
	defer func() {
		if !staged { // a failed commit leaves no secret of its epoch
			next.eraseStaged(st)
		}
	}()
	ac.Auth.ConfirmationTag = next.keys.ConfirmationTag(confirmed)
	next.confTag = ac.Auth.ConfirmationTag
	if next.interim, err = keyschedule.InterimTranscriptHash(st.s, confirmed, next.confTag); err != nil {
		return nil, err
	}
	if err := next.initSecrets(g.cfg); err != nil {
		return nil, err
	}
	commitMsg, err := g.protectSigned(st, ac)
	if err != nil {
		return nil, err
	}

	res := &CommitResult{Commit: commitMsg, Dropped: dropped}
	var giMsg, giBytes []byte
	if len(a.joiners) > 0 || opts.GroupInfo {
		var buf []byte
		if !opts.GroupInfo {
			// Only the Welcome needs the GroupInfo, and it seals a
			// copy: lay it out in a buffer kept from an earlier
			// commit, handed back (cleared) when this one returns.
			bp := welcomeGroupInfoBufs.Get().(*[]byte)
			buf = *bp
			defer func() {
				clear(buf)
				*bp = buf[:0]
				welcomeGroupInfoBufs.Put(bp)
			}()
		}
		if giMsg, giBytes, buf, err = g.groupInfo(next, signer, buf, !opts.RatchetTreeOutOfBand, opts.ExternalPub); err != nil {
			return nil, err
		}
	}
	if len(a.joiners) > 0 {
		members := make([]framing.NewMember, len(a.joiners))
		for i, j := range a.joiners {
			gs := &wire.GroupSecrets{JoinerSecret: bytes.Clone(joiner.Secret()), PSKs: a.psks}
			if created != nil {
				if _, ps := created.PathSecretFor(st.me, j); ps != nil {
					gs.PathSecret = &wire.PathSecret{PathSecret: ps}
				}
			}
			members[i] = framing.NewMember{KeyPackage: a.joinerKPs[i], Secrets: gs}
			defer clear(gs.JoinerSecret)
		}
		welcomeSecret := member.WelcomeSecret()
		res.Welcome, err = framing.NewWelcomeMessage(st.s, welcomeSecret, giBytes, members)
		welcomeSecret.Erase()
		if err != nil {
			return nil, err
		}
	}
	if opts.GroupInfo {
		res.GroupInfo = giMsg
	}
	sc := &StagedCommit{Committer: senderFromWire(me), Epoch: newCtx.Epoch, Removed: a.removed, Updated: a.updated,
		PathUpdated: commit.Path != nil, base: st, next: next}
	if signer != g.signer {
		sc.newSigner = signer
	}
	for i, j := range a.joiners {
		sc.Added = append(sc.Added, AddedMember{Leaf: LeafIndex(j), KeyPackage: keyPackageFromWire(a.joinerKPs[i])})
	}
	for i := range a.psks {
		sc.PSKs = append(sc.PSKs, pskIDFromWire(&a.psks[i]))
	}
	if a.reinit != nil {
		sc.ReInit = &ReInitInfo{GroupID: bytes.Clone(a.reinit.GroupID), CipherSuite: CipherSuite(a.reinit.CipherSuite),
			Extensions: extensionsFromWire(a.reinit.Extensions)}
	}
	res.Staged = sc
	g.pending = &pendingCommit{staged: sc}
	staged = true
	return res, nil
}

// MergePendingCommit enters the epoch of this member's own pending commit
// (after the delivery service has accepted it).
func (g *Group) MergePendingCommit() error {
	if g.pending == nil {
		return ErrNoPendingCommit
	}
	return g.MergeStagedCommit(g.pending.staged)
}

// DiscardPendingCommit drops this member's own pending commit (for example
// when the delivery service ordered another commit first). The secrets of
// the epoch it would have started are erased (RFC 9420, Section 9.2), and
// its StagedCommit can no longer be merged.
func (g *Group) DiscardPendingCommit() {
	if g.pending == nil {
		return
	}
	sc := g.pending.staged
	g.pending = nil
	sc.next.eraseStaged(sc.base)
	sc.base = nil
}

// HasPendingCommit reports whether an own commit awaits merging.
func (g *Group) HasPendingCommit() bool { return g.pending != nil }

// welcomeGroupInfoBufs holds the buffers commits lay out the GroupInfo of
// a Welcome in when the caller does not ask for the GroupInfo itself. With
// the ratchet tree in it (the default) it is as large as the group, 300 KB
// at 1,000 members and 15 MB at 50,000, and a fresh allocation that large
// page-faults on each of its pages as it is first written (about 11 µs a
// page on this project's VM), which a buffer reused from one commit to the
// next has done once.
var welcomeGroupInfoBufs = sync.Pool{New: func() any { return &[]byte{} }}

// groupInfo builds and signs the GroupInfo of st (RFC 9420, Section
// 12.4.3) and returns it encoded as an MLSMessage and as itself (giBytes,
// the end of msg), laid out in buf's storage if it is large enough, and the
// whole buffer used: see framing.SignGroupInfoMessageIn.
func (g *Group) groupInfo(st *epochState, signer *SignatureKeyPair, buf []byte, withTree, withExternalPub bool) (msg, giBytes, used []byte, err error) {
	gi := &wire.GroupInfo{
		GroupContext:    *st.ctx,
		ConfirmationTag: bytes.Clone(st.confTag),
		Signer:          uint32(st.me),
	}
	if withTree {
		// Written straight into the GroupInfo's encoding, not built
		// apart and copied in (it is most of the GroupInfo).
		tree, err := st.tree.Encoding()
		if err != nil {
			return nil, nil, buf, err
		}
		gi.Extensions = append(gi.Extensions, wire.Extension{ExtensionType: wire.ExtensionTypeRatchetTree, Writer: tree})
	}
	if withExternalPub {
		_, pub, err := st.keys.ExternalKeyPair()
		if err != nil {
			return nil, nil, buf, err
		}
		ep, err := codec.Marshal(&wire.ExternalPub{ExternalPub: pub})
		if err != nil {
			return nil, nil, buf, err
		}
		gi.Extensions = append(gi.Extensions, wire.Extension{ExtensionType: wire.ExtensionTypeExternalPub, ExtensionData: ep})
	}
	return framing.SignGroupInfoMessageIn(buf, signer.signer, gi)
}

// GroupInfo returns a signed GroupInfo for the current epoch as an
// MLSMessage, optionally with the ratchet tree and the external_pub
// extension for external joins (RFC 9420, Sections 12.4.3 and 12.4.3.2).
func (g *Group) GroupInfo(withTree, withExternalPub bool) ([]byte, error) {
	msg, _, _, err := g.groupInfo(g.st, g.signer, nil, withTree, withExternalPub)
	return msg, err
}
