package mls

import (
	"bytes"
	"errors"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/ratchettree"
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

// DuplicateExtensionKeyPackage re-encodes kp, whose leaf (where "leaf") or
// KeyPackage (where "keypackage") extensions are of types 0x7e57 and 0x7e58,
// with the second renamed 0x7e57 (where "": unchanged, a positive control),
// and signs leaf and KeyPackage again with key: a correctly
// signed KeyPackage whose extension list breaks RFC 9420, Section 13.4. Our
// encoder refuses such lists, so the bytes are patched by hand.
func DuplicateExtensionKeyPackage(kp *KeyPackage, key *SignatureKeyPair, where string) ([]byte, error) {
	w := kp.w
	leafEnc, err := codec.Marshal(&w.LeafNode)
	if err != nil {
		return nil, err
	}
	sigEnc, _ := codec.Marshal(opaque(w.LeafNode.Signature))
	leafTBS := bytes.Clone(leafEnc[:len(leafEnc)-len(sigEnc)])
	if where == "leaf" {
		i := bytes.LastIndex(leafTBS, []byte{0x7e, 0x58})
		if i < 0 {
			return nil, errors.New("no extension 0x7e58 in the leaf")
		}
		leafTBS[i+1] = 0x57
	}
	leafSig, err := key.sign("LeafNodeTBS", leafTBS)
	if err != nil {
		return nil, err
	}
	b := codec.NewBuilder(nil)
	b.AddUint16(uint16(w.Version))
	b.AddUint16(uint16(w.CipherSuite))
	b.AddOpaque(w.InitKey)
	b.AddBytes(leafTBS)
	b.AddOpaque(leafSig)
	b.AddVector(func(b *codec.Builder) {
		for _, e := range w.Extensions {
			t := uint16(e.ExtensionType)
			if where == "keypackage" && t == 0x7e58 {
				t = 0x7e57
			}
			b.AddUint16(t)
			b.AddOpaque(e.ExtensionData)
		}
	})
	tbs, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	sig, err := key.sign("KeyPackageTBS", tbs)
	if err != nil {
		return nil, err
	}
	m := codec.NewBuilder(nil)
	m.AddUint16(uint16(wire.ProtocolVersionMLS10))
	m.AddUint16(uint16(wire.WireFormatKeyPackage))
	m.AddBytes(tbs)
	m.AddOpaque(sig)
	return m.Bytes()
}

type opaque []byte

func (o opaque) Marshal(b *codec.Builder) { b.AddOpaque(o) }

// WithoutOwnSupportCheck runs f with this client's own-support checks off,
// so a test member can commit what an honest one would refuse to.
func WithoutOwnSupportCheck(f func()) {
	ownSupportCheck = false
	defer func() { ownSupportCheck = true }()
	f()
}

// GroupInfoWithBlankTree returns a GroupInfo of g (a one-member group),
// correctly signed, whose ratchet_tree is about size bytes: g's leaf, blank
// nodes, and other's leaf as the last node, with the matching tree_hash: a
// valid tree of ~size/2 leaves, two of them members (issue 12, finding 7).
func GroupInfoWithBlankTree(g *Group, other *KeyPackage, size int) ([]byte, error) {
	node := func(l *wire.LeafNode) ([]byte, error) {
		return codec.Marshal(&wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: l})
	}
	first, err := node(g.st.tree.Leaf(g.st.me))
	if err != nil {
		return nil, err
	}
	last, err := node(&other.w.LeafNode)
	if err != nil {
		return nil, err
	}
	blanks := size - len(first) - len(last) - 2
	if blanks%2 == 0 {
		blanks--
	}
	body := append([]byte{1}, first...)
	body = append(body, make([]byte, blanks)...)
	body = append(append(body, 1), last...)
	b := codec.NewBuilder(nil)
	b.AddOpaque(body)
	treeData, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	tree, err := ratchettree.Decode(g.st.s, treeData)
	if err != nil {
		return nil, err
	}
	gi := &wire.GroupInfo{GroupContext: *g.st.ctx, ConfirmationTag: bytes.Clone(g.st.confTag), Signer: uint32(g.st.me),
		Extensions: []wire.Extension{{ExtensionType: wire.ExtensionTypeRatchetTree, ExtensionData: treeData}}}
	gi.GroupContext.TreeHash = tree.TreeHash()
	if err := framing.SignGroupInfo(g.signer.signer, gi); err != nil {
		return nil, err
	}
	return codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatGroupInfo, GroupInfo: gi})
}

// SecretTreeRoot returns a copy of the root secret of g's current secret
// tree, encryption_secret (RFC 9420, Section 9), or nil once the tree has
// split it to derive a leaf.
func SecretTreeRoot(g *Group) []byte {
	sk, err := skeleton(g.st.secrets)
	if err != nil {
		return nil
	}
	defer clear(sk)
	r := codec.NewReader(sk)
	var leaves, tol, fwd uint32
	var erased bool
	if !r.ReadUint32(&leaves) || !r.ReadUint32(&tol) || !r.ReadUint32(&fwd) || !r.ReadBool(&erased) {
		return nil
	}
	root := uint32(treemath.Root(leaves))
	var out []byte
	r.ReadList(func(r *codec.Reader) bool {
		var x uint32
		var s []byte
		if !r.ReadUint32(&x) || !r.ReadOpaque(&s) {
			return false
		}
		if x == root {
			out = bytes.Clone(s)
		}
		return true
	})
	return out
}

// EncryptionSecretHeld reports whether g's key schedule still holds
// encryption_secret beside the secret tree.
func EncryptionSecretHeld(g *Group) bool { return len(g.st.keys.Encryption) != 0 }

// PendingEpochSecrets returns the secrets (not copies) of the epoch g's
// pending commit would start: its key schedule and the path keys it does
// not share with the current epoch.
func PendingEpochSecrets(g *Group) [][]byte {
	if g.pending == nil {
		return nil
	}
	next := g.pending.staged.next
	out := [][]byte{next.keys.SenderData, next.keys.Exporter, next.keys.External,
		next.keys.Confirmation, next.keys.Membership, next.keys.Resumption, next.keys.Authenticator, next.keys.Init}
	for _, x := range next.priv.Nodes() {
		k, _ := next.priv.PrivateKey(x)
		if old, ok := g.st.priv.PrivateKey(x); ok && len(old) > 0 && &old[0] == &k[0] {
			continue
		}
		out = append(out, k)
	}
	return out
}
