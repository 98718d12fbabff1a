package inspect

import (
	"fmt"

	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
)

// This file decrypts and verifies what one member can, given its state
// (mls inspect -state): a PrivateMessage of its group, the membership tag
// and confirmation tag of a PublicMessage, a Welcome to one of its
// KeyPackages.

// Member is one client's persistent state: its groups and the private keys
// of the KeyPackages it published. Inspect only reads through it; a Group it
// returns is used for one inspection and never saved, so inspecting a
// message does not consume its key in the stored state.
type Member interface {
	// Group returns this client's view of a group, or nil and no error
	// when the state holds no such group.
	Group(groupID []byte) (*mls.Group, error)
	// KeyPackage returns the bundle of a KeyPackage this client published,
	// or nil and no error when it has none with that reference.
	KeyPackage(ref []byte) (*mls.KeyPackageBundle, error)
}

const whyMember = "as this client's member of the group"

// memberGroup loads the member's group for a message, reporting why not.
func (in *inspector) memberGroup(path, name, section string, groupID []byte) *mls.Group {
	g, err := in.member.Group(groupID)
	switch {
	case err != nil:
		in.notVerified(path, name, section, "the state could not be read: "+errText(err))
	case g == nil:
		in.notVerified(path, name, section, fmt.Sprintf("the state holds no group %x", groupID))
	}
	return g
}

// messageBytes returns the MLSMessage that carries m: the input itself when
// it was an MLSMessage, else m re-encoded (canonical, so the same bytes).
func (in *inspector) messageBytes(wf wire.WireFormat, pub *wire.PublicMessage, priv *wire.PrivateMessage) ([]byte, error) {
	if in.input != nil {
		return in.input, nil
	}
	return wire.Encode(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wf, PublicMessage: pub, PrivateMessage: priv})
}

// decryptPrivate decrypts a PrivateMessage as the member (RFC 9420,
// Section 6.3) and returns a summary of what it carries, or nil.
func (in *inspector) decryptPrivate(path string, pm *wire.PrivateMessage) *Node {
	const name, sec = "decryption and verification " + whyMember, "6.3"
	g := in.memberGroup(path, name, sec, pm.GroupID)
	if g == nil {
		return nil
	}
	msg, err := in.messageBytes(wire.WireFormatPrivateMessage, nil, pm)
	if err != nil {
		in.notVerified(path, name, sec, errText(err))
		return nil
	}
	r, err := g.Process(msg)
	if err != nil {
		in.failed(path, name, sec, fmt.Sprintf("the member at leaf %d: %s", g.LeafIndex(), errText(err)))
		return nil
	}
	in.okDetail(path, name, sec, fmt.Sprintf("by the member at leaf %d", g.LeafIndex()))
	return receivedNode(r)
}

// processPublic processes a PublicMessage as the member, which checks the
// membership tag (Section 6.2) and, for a commit, everything of Section
// 12.4.2 including the confirmation tag.
func (in *inspector) processPublic(path string, pm *wire.PublicMessage) {
	const name, sec = "membership_tag and validity " + whyMember, "6.2"
	g := in.memberGroup(path, name, sec, pm.Content.GroupID)
	if g == nil {
		return
	}
	msg, err := in.messageBytes(wire.WireFormatPublicMessage, pm, nil)
	if err != nil {
		in.notVerified(path, name, sec, errText(err))
		return
	}
	if _, err := g.Process(msg); err != nil {
		in.failed(path, name, sec, fmt.Sprintf("the member at leaf %d: %s", g.LeafIndex(), errText(err)))
		return
	}
	in.okDetail(path, name, sec, fmt.Sprintf("by the member at leaf %d", g.LeafIndex()))
}

// senderNodeOf describes an mls.Sender with the RFC's Sender fields.
func senderNodeOf(s mls.Sender) *Node {
	return senderNode(&wire.Sender{SenderType: wire.SenderType(s.Type), LeafIndex: uint32(s.Leaf), SenderIndex: uint32(s.Leaf)})
}

// receivedNode summarises what a member got from a message. The group
// layer gives the content's meaning, not its encoding, so this is a summary
// with the RFC's names where they apply, not the PrivateMessageContent
// struct.
func receivedNode(r *mls.Received) *Node {
	n := structNode("", "decrypted content (summary)",
		uintNode("epoch", "uint64", r.Epoch),
		senderNodeOf(r.Sender),
		bytesNode("authenticated_data", "opaque<V>", r.AuthenticatedData))
	switch {
	case r.Proposal == nil && r.Commit == nil:
		n.Fields = append(n.Fields, textBytesNode("application_data", "opaque<V>", r.Application))
	case r.Proposal != nil:
		p := r.Proposal
		pn := structNode("proposal", "proposal (summary)",
			proposalTypeNode("proposal_type", wire.ProposalType(p.Type)),
			bytesNode("proposal_ref", "ProposalRef", p.Ref))
		if p.Added != nil {
			pn.Fields = append(pn.Fields, bytesNode("added_key_package_ref", "KeyPackageRef", p.Added.Ref()))
		}
		if wire.ProposalType(p.Type) == wire.ProposalTypeRemove {
			pn.Fields = append(pn.Fields, uintNode("removed", "uint32", uint64(p.Removed)))
		}
		n.Fields = append(n.Fields, pn)
	case r.Commit != nil:
		n.Fields = append(n.Fields, stagedCommitNode(r.Commit))
	}
	return n
}

func stagedCommitNode(sc *mls.StagedCommit) *Node {
	added := make([]*Node, len(sc.Added))
	for i, a := range sc.Added {
		added[i] = structNode("", "added member",
			uintNode("leaf_index", "uint32", uint64(a.Leaf)),
			bytesNode("key_package_ref", "KeyPackageRef", a.KeyPackage.Ref()))
	}
	removed := make([]*Node, len(sc.Removed))
	for i, r := range sc.Removed {
		removed[i] = uintNode("", "uint32", uint64(r.Leaf))
	}
	updated := make([]*Node, len(sc.Updated))
	for i, l := range sc.Updated {
		updated[i] = uintNode("", "uint32", uint64(l))
	}
	n := structNode("commit", "commit (summary)",
		uintNode("new_epoch", "uint64", sc.Epoch),
		vectorNode("added", "added member<V>", added),
		vectorNode("removed_leaves", "uint32<V>", removed),
		vectorNode("updated_leaves", "uint32<V>", updated))
	n.Label = fmt.Sprintf("path: %v, external: %v, removes this member: %v", sc.PathUpdated, sc.External, sc.SelfRemoved)
	return n
}

// openWelcome decrypts the GroupSecrets of each Welcome entry addressed to
// one of the member's KeyPackages and, when no PSK is needed, the GroupInfo
// (RFC 9420, Section 12.4.3.1). It attaches what it decrypted to the
// Welcome's nodes and checks the GroupInfo like any other.
func (in *inspector) openWelcome(path string, w *wire.Welcome, secrets []*Node, encGroupInfo *Node) {
	const sec = "12.4.3.1"
	s, err := lookupSuite(w.CipherSuite)
	if err != nil {
		return // reported by checkWelcome
	}
	var gs *wire.GroupSecrets
	for i := range w.Secrets {
		p := index(join(path, "secrets"), i)
		b, err := in.member.KeyPackage(w.Secrets[i].NewMember)
		if err != nil {
			in.notVerified(p, "encrypted_group_secrets", sec, "the state could not be read: "+errText(err))
			continue
		}
		if b == nil {
			continue
		}
		kp, err := wire.UnmarshalMLSMessage(b.KeyPackage.Bytes())
		if err != nil || kp.KeyPackage == nil {
			in.notVerified(p, "encrypted_group_secrets", sec, "the stored KeyPackage does not decode")
			continue
		}
		got, err := framing.OpenGroupSecrets(s, w, kp.KeyPackage, b.InitKey)
		if err != nil {
			in.failed(p, "encrypted_group_secrets", sec, "does not decrypt with the stored KeyPackage's init_key: "+errText(err))
			continue
		}
		in.ok(p, "encrypted_group_secrets decrypt with the stored KeyPackage's init_key", sec)
		ct := secrets[i].Fields[1].Fields[1] // encrypted_group_secrets.ciphertext
		ct.Decoded = redactedGroupSecrets(got)
		gs = got
	}
	if gs == nil {
		in.notVerified(path, "encrypted_group_secrets", sec, "no entry is for a KeyPackage in the state")
		return
	}
	if len(gs.PSKs) > 0 {
		in.notVerified(path, "encrypted_group_info", sec, "needs the PSKs the GroupSecrets name")
		return
	}
	js, err := keyschedule.JoinerSecretFromBytes(s, gs.JoinerSecret)
	if err != nil {
		in.failed(path, "encrypted_group_info", sec, errText(err))
		return
	}
	psk, err := keyschedule.PSKSecret(s, nil)
	if err != nil {
		in.failed(path, "encrypted_group_info", sec, errText(err))
		return
	}
	ms := js.WithPSK(psk)
	gi, err := framing.DecryptGroupInfo(s, ms.WelcomeSecret(), w.EncryptedGroupInfo)
	ms.Erase()
	js.Erase()
	if err != nil {
		in.failed(path, "encrypted_group_info", sec, "does not decrypt or decode with the welcome_secret: "+errText(err))
		return
	}
	in.ok(path, "encrypted_group_info decrypts with the welcome_secret", sec)
	encGroupInfo.Decoded = in.groupInfo(join(path, "group_info"), gi)
}

// redactedGroupSecrets describes decrypted GroupSecrets without their
// secrets: a live group's joiner and path secrets never reach the output.
func redactedGroupSecrets(gs *wire.GroupSecrets) *Node {
	n := groupSecretsNode(gs)
	n.Fields[0] = secretNode("joiner_secret", len(gs.JoinerSecret))
	if gs.PathSecret != nil {
		n.Fields[1] = present(structNode("path_secret", "PathSecret", secretNode("path_secret", len(gs.PathSecret.PathSecret))))
	}
	return n
}
