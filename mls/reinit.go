package mls

import (
	"bytes"
	"errors"

	"github.com/mlskit/mlskit/internal/wire"
)

// ResumeOptions tunes ReInitGroup and Branch.
type ResumeOptions struct {
	// Credential and Signer are this member's identity in the new group.
	// They default to the old group's; a ReInit to another cipher suite
	// needs a Signer for that suite.
	Credential *Credential
	Signer     *SignatureKeyPair
	// Commit shapes the commit that adds the other members.
	Commit *CommitOptions
}

// ReInitGroup creates the group that replaces g after g merged a commit
// with a ReInit proposal (RFC 9420, Section 11.2): a new group with the
// ReInit's group id, cipher suite and extensions, whose first commit adds
// keyPackages (the other members' KeyPackages for the new suite) and
// injects the resumption PSK of g's last epoch with usage reinit. The new
// group's commit is pending: merge it once the delivery service accepts it,
// and send the Welcome.
func (g *Group) ReInitGroup(keyPackages []*KeyPackage, opts *ResumeOptions) (*Group, *CommitResult, error) {
	ri := g.st.reinit
	if ri == nil {
		return nil, nil, errors.New("mls: the group's last commit was not a ReInit")
	}
	// Section 11.2: the new group has the same membership as the old.
	if err := g.checkResumedMembers(keyPackages, opts, true); err != nil {
		return nil, nil, err
	}
	// The PSK is that of the epoch after the commit covering the ReInit:
	// the current one, since that commit was the group's last (Section 11.2).
	return g.resume(ri.GroupID, CipherSuite(ri.CipherSuite), extensionsFromWire(ri.Extensions),
		wire.ResumptionPSKUsageReInit, g.st.ctx.Epoch, keyPackages, opts)
}

// checkResumedMembers checks, before creating a ReInit or branch group, that
// its members (this member and keyPackages' clients) are members of g, and
// for a ReInit (all) all of them (RFC 9420, Sections 11.2 and 11.3).
func (g *Group) checkResumedMembers(keyPackages []*KeyPackage, opts *ResumeOptions, all bool) error {
	own := g.st.tree.Leaf(g.st.me)
	if own == nil {
		return ErrRemoved
	}
	next := []Credential{credentialFromWire(own.Credential)}
	if opts != nil && opts.Credential != nil {
		next[0] = *opts.Credential
	}
	for _, kp := range keyPackages {
		next = append(next, kp.Credential())
	}
	return matchCredentials(g.cfg, next, treeCredentials(g.st.tree), all)
}

// Branch creates a subgroup of g with a new group id (RFC 9420, Section
// 11.3): same cipher suite, the members of keyPackages, and the resumption
// PSK of g's current epoch with usage branch. The new group's commit is
// pending until merged.
func (g *Group) Branch(groupID []byte, keyPackages []*KeyPackage, opts *ResumeOptions) (*Group, *CommitResult, error) {
	if g.removed {
		return nil, nil, ErrRemoved
	}
	// Section 11.3: every member of the subgroup is a member of g.
	if err := g.checkResumedMembers(keyPackages, opts, false); err != nil {
		return nil, nil, err
	}
	return g.resume(groupID, g.CipherSuite(), g.Extensions(), wire.ResumptionPSKUsageBranch, g.st.ctx.Epoch, keyPackages, opts)
}

func (g *Group) resume(groupID []byte, cs CipherSuite, exts []Extension, usage wire.ResumptionPSKUsage, pskEpoch uint64,
	keyPackages []*KeyPackage, opts *ResumeOptions) (*Group, *CommitResult, error) {
	if opts == nil {
		opts = &ResumeOptions{}
	}
	signer := g.signer
	if opts.Signer != nil {
		signer = opts.Signer
	}
	if signer.cs != cs {
		return nil, nil, errors.New("mls: the new group needs a signature key for its cipher suite")
	}
	cred := credentialFromWire(g.st.tree.Leaf(g.st.me).Credential)
	if opts.Credential != nil {
		cred = *opts.Credential
	}
	ng, err := NewGroup(g.cfg, groupID, cred, signer, &GroupOptions{Extensions: exts})
	if err != nil {
		return nil, nil, err
	}
	ng.resuming = g
	copts := CommitOptions{}
	if opts.Commit != nil {
		copts = *opts.Commit
	}
	copts.Proposals = nil
	for _, kp := range keyPackages {
		if kp.CipherSuite() != cs {
			return nil, nil, invalid(ErrInvalidKeyPackage, "11.2", "KeyPackage for another cipher suite")
		}
		copts.Proposals = append(copts.Proposals, AddProposal(kp))
	}
	copts.Proposals = append(copts.Proposals, &Proposal{p: &wire.Proposal{ProposalType: wire.ProposalTypePSK,
		PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{PSKType: wire.PSKTypeResumption, Usage: usage,
			PSKGroupID: bytes.Clone(g.st.ctx.GroupID), PSKEpoch: pskEpoch}}}})
	if opts.Commit != nil {
		copts.Proposals = append(copts.Proposals, opts.Commit.Proposals...)
	}
	res, err := ng.Commit(&copts)
	if err != nil {
		return nil, nil, err
	}
	return ng, res, nil
}
