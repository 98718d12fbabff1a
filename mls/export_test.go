package mls

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// Test hooks for the scenario, hostile-input and window tests: unexported state that the black-box tests in package mls_test
// need to observe, and a few ways to build inputs the public API refuses to
// make (forged signatures, application data in a PublicMessage).

// KeyAvailability describes, for every member leaf and both ratchets of the
// current epoch's secret tree (and of each retained past epoch), whether
// generations 0..gens-1 could still be decrypted. It uses
// secrettree.Tree.Peek, which changes nothing, so a test can compare it
// before and after a rejected message to see whether a key was consumed.
func KeyAvailability(g *Group, gens int) string {
	var b strings.Builder
	describe := func(label string, t *secrettree.Tree, members func(func(treemath.LeafIndex, *wire.LeafNode) bool)) {
		describeAvailability(&b, label, t, members, gens)
	}
	if g.st.secrets != nil {
		describe(fmt.Sprintf("epoch %d", g.st.ctx.Epoch), g.st.secrets, g.st.tree.Members)
	}
	for _, p := range g.past {
		describe(fmt.Sprintf("past epoch %d", p.epoch), p.fe.Tree, p.tree.Members)
	}
	return b.String()
}

// WithSigner runs f with g signing as key instead of its own signature key,
// so f can produce forged messages (FramedContent, leaf and GroupInfo
// signatures by a key that is not the member's) that are otherwise
// correctly protected: a valid membership tag and encryption.
func WithSigner(g *Group, key *SignatureKeyPair, f func()) {
	saved := g.signer
	g.signer = key
	defer func() { g.signer = saved }()
	f()
}

// DropOwnProposals forgets the proposals g sent in this epoch, to undo a
// forged proposal made with WithSigner.
func DropOwnProposals(g *Group) {
	kept := g.st.proposals[:0]
	for _, p := range g.st.proposals {
		if !p.own {
			kept = append(kept, p)
		}
	}
	g.st.proposals = kept
}

// PublicApplication builds what Encrypt refuses to: application data sent as
// a PublicMessage with a valid signature and membership tag (RFC 9420,
// Section 6 forbids it), signed by g's member.
func PublicApplication(g *Group, data []byte) ([]byte, error) {
	content := &wire.FramedContent{
		GroupID: g.st.ctx.GroupID, Epoch: g.st.ctx.Epoch,
		Sender:      wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: uint32(g.st.me)},
		ContentType: wire.ContentTypeApplication, ApplicationData: data,
	}
	ac, err := framing.Sign(g.signer.signer, wire.WireFormatPublicMessage, content, g.st.ctx)
	if err != nil {
		return nil, err
	}
	pm := &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth}
	pm.Auth.ContentType = wire.ContentTypeApplication
	// The membership tag is left empty: framing has no API to compute it for
	// application content, and the receiver must refuse the content type
	// (RFC 9420, Section 6) whatever the tag.
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
}

// ResignKeyPackage returns kp's encoding with its KeyPackage signature made
// by key instead of the leaf's signature key: a forged KeyPackage.
func ResignKeyPackage(kp *KeyPackage, key *SignatureKeyPair) ([]byte, error) {
	w := *kp.w
	sig, err := key.sign("KeyPackageTBS", w.TBS())
	if err != nil {
		return nil, err
	}
	w.Signature = sig
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatKeyPackage, KeyPackage: &w})
}

// SenderDataOf decrypts only the SenderData of a PrivateMessage with g's
// current epoch secrets (RFC 9420, Section 6.3.2), so a test can tell which
// ratchet generation a message uses without consuming anything.
func SenderDataOf(g *Group, msg []byte) (leaf LeafIndex, application bool, generation uint32, ok bool) {
	m, err := wire.UnmarshalMLSMessage(bytes.Clone(msg))
	if err != nil || m.WireFormat != wire.WireFormatPrivateMessage {
		return 0, false, 0, false
	}
	pm, st := m.PrivateMessage, g.st
	aad, err := codec.Marshal(&wire.SenderDataAAD{GroupID: pm.GroupID, Epoch: pm.Epoch, ContentType: pm.ContentType})
	if err != nil {
		return 0, false, 0, false
	}
	key, nonce := keyschedule.SenderDataKeyNonce(st.s, st.keys.SenderData, pm.Ciphertext)
	pt, err := st.s.Open(key, nonce, aad, pm.EncryptedSenderData)
	if err != nil {
		return 0, false, 0, false
	}
	sd, err := wire.UnmarshalSenderData(pt)
	if err != nil {
		return 0, false, 0, false
	}
	return LeafIndex(sd.LeafIndex), pm.ContentType == wire.ContentTypeApplication, sd.Generation, true
}

// KeyUsable reports whether g's current secret tree could still serve the
// key of generation of leaf's application or handshake ratchet (Peek: it
// changes nothing).
func KeyUsable(g *Group, leaf LeafIndex, application bool, generation uint32) bool {
	kind := secrettree.Handshake
	if application {
		kind = secrettree.Application
	}
	_, _, err := g.st.secrets.Peek(treemath.LeafIndex(leaf), kind, generation)
	return err == nil
}

// WithCurrentFormat1 runs f with the current epoch record written and read
// at format version 1, as builds before last_join did.
func WithCurrentFormat1(t interface{ Cleanup(func()) }, f func()) {
	saved := currentFormat
	currentFormat = 1
	defer func() { currentFormat = saved }()
	f()
}

// LastJoin is the newest epoch a member joined in (Group.lastJoin).
func LastJoin(g *Group) uint64 { return g.lastJoin }
