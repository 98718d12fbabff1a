// Package fakemsg builds well-formed MLSMessages around opaque bytes, for
// delivery-service tests: PrivateMessage, PublicMessage, Welcome and
// GroupInfo envelopes whose encrypted or signed parts are whatever the test
// passes. A delivery service cannot tell them from real ones, which is the
// point. It only encodes (with internal/wire); decoding is the mls
// package's (mls.InspectMessage, mls.ParseKeyPackage).
package fakemsg

import "github.com/mlskit/mlskit/internal/wire"

// Content types (RFC 9420, Section 6).
const (
	ContentApplication uint8 = 1
	ContentProposal    uint8 = 2
	ContentCommit      uint8 = 3
)

// Sender types (RFC 9420, Section 6).
const (
	SenderMember            uint8 = 1
	SenderExternal          uint8 = 2
	SenderNewMemberProposal uint8 = 3
	SenderNewMemberCommit   uint8 = 4
)

func encode(m *wire.MLSMessage) []byte {
	m.Version = wire.ProtocolVersionMLS10
	out, err := wire.Encode(m)
	if err != nil {
		panic("fakemsg: " + err.Error()) // only reachable through a bug in the builders
	}
	return out
}

// PrivateMessage builds an MLSMessage carrying a PrivateMessage (RFC 9420,
// Section 6.3) whose encrypted fields are the given opaque bytes.
func PrivateMessage(groupID []byte, epoch uint64, contentType uint8, senderData, ciphertext []byte) []byte {
	return encode(&wire.MLSMessage{WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: &wire.PrivateMessage{
		GroupID: groupID, Epoch: epoch, ContentType: wire.ContentType(contentType), AuthenticatedData: []byte{},
		EncryptedSenderData: senderData, Ciphertext: ciphertext,
	}})
}

// PublicMessage builds an MLSMessage carrying a PublicMessage (RFC 9420,
// Section 6.2) from the given sender: application data, an empty proposal
// list commit, or (for proposals) a Remove of leaf; payload stands in for
// the application data and the signature. Nothing in it verifies.
func PublicMessage(groupID []byte, epoch uint64, senderType uint8, leaf uint32, contentType uint8, payload []byte) []byte {
	c := wire.FramedContent{GroupID: groupID, Epoch: epoch, Sender: wire.Sender{SenderType: wire.SenderType(senderType)},
		AuthenticatedData: []byte{}, ContentType: wire.ContentType(contentType)}
	switch senderType {
	case SenderMember:
		c.Sender.LeafIndex = leaf
	case SenderExternal:
		c.Sender.SenderIndex = leaf
	}
	auth := wire.FramedContentAuthData{ContentType: c.ContentType, Signature: payload}
	switch contentType {
	case ContentApplication:
		c.ApplicationData = payload
	case ContentProposal:
		c.Proposal = &wire.Proposal{ProposalType: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: leaf}}
	case ContentCommit:
		c.Commit = &wire.Commit{Proposals: []wire.ProposalOrRef{}}
		auth.ConfirmationTag = make([]byte, 32)
	}
	pm := &wire.PublicMessage{Content: c, Auth: auth}
	if senderType == SenderMember {
		pm.MembershipTag = make([]byte, 32)
	}
	return encode(&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
}

// Welcome builds an MLSMessage carrying a Welcome (RFC 9420, Section
// 12.4.3.1) for the given KeyPackageRefs with opaque encrypted parts.
func Welcome(suiteID uint16, refs [][]byte, encryptedGroupInfo []byte) []byte {
	w := &wire.Welcome{CipherSuite: wire.CipherSuite(suiteID), Secrets: []wire.EncryptedGroupSecrets{}, EncryptedGroupInfo: encryptedGroupInfo}
	for _, r := range refs {
		w.Secrets = append(w.Secrets, wire.EncryptedGroupSecrets{NewMember: r,
			EncryptedGroupSecrets: wire.HPKECiphertext{KEMOutput: []byte("kem output"), Ciphertext: []byte("ciphertext")}})
	}
	return encode(&wire.MLSMessage{WireFormat: wire.WireFormatWelcome, Welcome: w})
}

// GroupInfo builds an MLSMessage carrying a GroupInfo (RFC 9420, Section
// 12.4.3) whose GroupContext names groupID and epoch; payload stands in for
// the signature.
func GroupInfo(suiteID uint16, groupID []byte, epoch uint64, payload []byte) []byte {
	return encode(&wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: &wire.GroupInfo{
		GroupContext: wire.GroupContext{Version: wire.ProtocolVersionMLS10, CipherSuite: wire.CipherSuite(suiteID),
			GroupID: groupID, Epoch: epoch, TreeHash: make([]byte, 32), ConfirmedTranscriptHash: make([]byte, 32), Extensions: []wire.Extension{}},
		Extensions: []wire.Extension{}, ConfirmationTag: make([]byte, 32), Signature: payload,
	}})
}
