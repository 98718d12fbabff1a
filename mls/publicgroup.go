package mls

import (
	"bytes"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/wire"
)

// PublicGroup follows a group without any of its secrets, as a delivery
// service can (RFC 9750, Section 5; RFC 9420, Section 6.2): it verifies the
// signatures of PublicMessage handshakes, validates proposals and commits
// against the tree, and tracks the tree, GroupContext and transcript
// hashes. It cannot check membership tags or confirmation tags, and it
// cannot see handshakes sent as PrivateMessage.
type PublicGroup struct {
	g *Group
}

// NewPublicGroup starts following a group from a GroupInfo (MLSMessage),
// validating the tree (from the ratchet_tree extension or given).
func NewPublicGroup(cfg *Config, groupInfo, ratchetTree []byte) (*PublicGroup, error) {
	v, err := verifyGroupInfo(cfg, groupInfo, ratchetTree)
	if err != nil {
		return nil, classify(err)
	}
	ctx := v.gi.GroupContext
	ctxBytes, err := codec.Marshal(&ctx)
	if err != nil {
		return nil, err
	}
	interim, err := keyschedule.InterimTranscriptHash(v.s, ctx.ConfirmedTranscriptHash, v.gi.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	st := &epochState{s: v.s, ctx: &ctx, ctxBytes: ctxBytes, tree: v.tree, interim: interim,
		confTag: bytes.Clone(v.gi.ConfirmationTag)}
	return &PublicGroup{g: &Group{cfg: cfg, st: st}}, nil
}

// GroupID returns the group id.
func (p *PublicGroup) GroupID() []byte { return p.g.GroupID() }

// Epoch returns the current epoch.
func (p *PublicGroup) Epoch() uint64 { return p.g.Epoch() }

// Members lists the members.
func (p *PublicGroup) Members() []Member { return p.g.Members() }

// TreeHash returns the current tree hash.
func (p *PublicGroup) TreeHash() []byte { return p.g.TreeHash() }

// RatchetTree returns the encoded ratchet tree.
func (p *PublicGroup) RatchetTree() ([]byte, error) { return p.g.RatchetTree() }

// Process verifies a PublicMessage handshake: proposals are cached,
// commits are validated and staged (merge with Merge).
func (p *PublicGroup) Process(data []byte) (*Received, error) {
	r, err := p.process(data)
	return r, classify(err)
}

func (p *PublicGroup) process(data []byte) (*Received, error) {
	g := p.g
	st := g.st
	m, err := wire.UnmarshalMLSMessage(bytes.Clone(data))
	if err != nil {
		return nil, err
	}
	if m.WireFormat != wire.WireFormatPublicMessage {
		return nil, invalid(ErrUnsupported, "6", "a public view can only process PublicMessage, not %v", m.WireFormat)
	}
	fe := &framing.Epoch{Suite: st.s, Context: st.ctx}
	ac, err := fe.VerifyPublicObserver(m.PublicMessage, st.memberKeys)
	if err != nil {
		return nil, err
	}
	c := &ac.Content
	rcv := &Received{Epoch: c.Epoch, Sender: senderFromWire(c.Sender), AuthenticatedData: c.AuthenticatedData}
	switch c.ContentType {
	case wire.ContentTypeProposal:
		if rcv.Proposal, err = g.receiveProposal(ac); err != nil {
			return nil, err
		}
	case wire.ContentTypeCommit:
		if rcv.Commit, err = g.stageCommit(ac); err != nil {
			return nil, err
		}
	}
	return rcv, nil
}

// Merge applies a commit staged by Process.
func (p *PublicGroup) Merge(sc *StagedCommit) error { return p.g.MergeStagedCommit(sc) }
