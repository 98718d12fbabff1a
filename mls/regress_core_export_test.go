package mls

import (
	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// Hooks for regress_core_test.go (issue 12, findings 1, 4, 7, 8 and 11):
// they let a test act as a malicious member that sends correctly signed and
// membership-tagged messages whose content breaks a rule.

// ForgeProposal protects p as a PublicMessage signed by g's member but
// claiming member leaf_index sender. The signature and membership tag are
// valid; g's own state is not changed.
func ForgeProposal(g *Group, sender uint32, p *wire.Proposal) ([]byte, error) {
	st := g.st
	content := &wire.FramedContent{
		GroupID: st.ctx.GroupID, Epoch: st.ctx.Epoch,
		Sender:      wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: sender},
		ContentType: wire.ContentTypeProposal, Proposal: p,
	}
	ac, err := framing.Sign(g.signer.signer, wire.WireFormatPublicMessage, content, st.ctx)
	if err != nil {
		return nil, err
	}
	pm, err := st.framingEpoch().ProtectPublic(ac)
	if err != nil {
		return nil, err
	}
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
}

// ForgeUpdate is an Update proposal from g's member with a fresh leaf signed
// over leaf index at (RFC 9420, Section 7.2: update leaves sign their
// position), sent as leaf_index at.
func ForgeUpdate(g *Group, at uint32) ([]byte, error) {
	leaf, _, _, err := g.freshLeaf(wire.LeafNodeSourceUpdate, nil, nil)
	if err != nil {
		return nil, err
	}
	if leaf.Signature, err = g.signer.sign("LeafNodeTBS", leaf.TBS(g.st.ctx.GroupID, at)); err != nil {
		return nil, err
	}
	return ForgeProposal(g, at, &wire.Proposal{ProposalType: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: *leaf}})
}

// WithLeafIndex runs f while g believes it sits at leaf l, so that what f
// makes g send (a commit without a path, say) claims sender l.
func WithLeafIndex(g *Group, l uint32, f func()) {
	saved := g.st.me
	g.st.me = treemath.LeafIndex(l)
	defer func() { g.st.me = saved }()
	f()
}
