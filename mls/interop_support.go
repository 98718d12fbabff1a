package mls

import (
	"bytes"
	"slices"

	"github.com/mlskit/mlskit/internal/wire"
)

// This file holds the few exported functions the interop test client
// (package interop, the MLS working group's gRPC harness) needs and the rest
// of the API does not offer. Each is small, and each is also what an
// application or a delivery service may want.

// RatchetTree returns the encoded ratchet tree of the epoch the commit
// starts (the ratchet_tree extension's data, RFC 9420, Section 12.4.3.3).
// A committer that sends the tree to joiners out of band
// (CommitOptions.RatchetTreeOutOfBand) needs it before the commit is
// merged: the interop harness's Commit RPC returns it with the commit.
// It fails for a commit that removed this member, whose new epoch is not
// computed.
func (sc *StagedCommit) RatchetTree() ([]byte, error) {
	if sc == nil || sc.next == nil {
		return nil, ErrRemoved
	}
	return sc.next.tree.Encode()
}

// DiscardProposal drops a proposal cached in this epoch (received by
// Process or sent by one of the Propose methods) so that no later Commit
// includes it by reference, and reports whether it was cached. ref is
// ProposalInfo.Ref. An application uses it to take back a proposal that the
// delivery service rejected, or to undo the proposals it processed for a
// commit that then failed: the interop harness's Commit and HandleCommit RPCs
// process their by-reference proposals first and must leave the group as it
// was if anything after fails (RFC 9420, Section 12.1: a proposal only takes
// effect when a commit includes it).
func (g *Group) DiscardProposal(ref []byte) bool {
	n := len(g.st.proposals)
	g.st.proposals = slices.DeleteFunc(g.st.proposals, func(cp *cachedProposal) bool { return bytes.Equal(cp.ref, ref) })
	return len(g.st.proposals) != n
}

// BranchWith is Branch with the new group's GroupContext extensions given
// instead of copied from g: a subgroup keeps the cipher suite and version of
// its parent (RFC 9420, Section 11.3, checked by joiners in Section
// 12.4.3.1) but not necessarily its extensions. The interop harness's
// CreateBranch RPC names them.
func (g *Group) BranchWith(groupID []byte, exts []Extension, keyPackages []*KeyPackage, opts *ResumeOptions) (*Group, *CommitResult, error) {
	if g.removed {
		return nil, nil, ErrRemoved
	}
	if err := g.checkResumedMembers(keyPackages, opts, false); err != nil {
		return nil, nil, err
	}
	return g.resume(groupID, g.CipherSuite(), exts, wire.ResumptionPSKUsageBranch, g.st.ctx.Epoch, keyPackages, opts)
}

// CipherSuite returns the group's cipher suite, for example to make a
// KeyPackage that can join it (RFC 9420, Section 12.1.8: a new member's Add).
func (p *PublicGroup) CipherSuite() CipherSuite { return p.g.CipherSuite() }

// Extensions returns the GroupContext extensions, for example to find an
// external sender's index in external_senders (RFC 9420, Section 12.1.8.1).
func (p *PublicGroup) Extensions() []Extension { return p.g.Extensions() }
