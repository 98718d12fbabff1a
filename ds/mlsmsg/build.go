package mlsmsg

import "github.com/mlskit/mlskit/internal/codec"

// PrivateMessage builds an MLSMessage carrying a PrivateMessage (RFC 9420,
// Section 6.3) whose encrypted fields are the given opaque bytes. The
// delivery service cannot tell it from a real one, which is the point.
func PrivateMessage(groupID []byte, epoch uint64, contentType uint8, senderData, ciphertext []byte) []byte {
	b := codec.NewBuilder(nil)
	b.AddUint16(VersionMLS10)
	b.AddUint16(WireFormatPrivateMessage)
	b.AddOpaque(groupID)
	b.AddUint64(epoch)
	b.AddUint8(contentType)
	b.AddOpaque(nil) // authenticated_data
	b.AddOpaque(senderData)
	b.AddOpaque(ciphertext)
	out, _ := b.Bytes()
	return out
}

// PublicMessage builds an MLSMessage carrying a PublicMessage (RFC 9420,
// Section 6.2) with the given sender and an opaque remainder standing in for
// content, auth data and membership tag.
func PublicMessage(groupID []byte, epoch uint64, senderType uint8, leaf uint32, contentType uint8, rest []byte) []byte {
	b := codec.NewBuilder(nil)
	b.AddUint16(VersionMLS10)
	b.AddUint16(WireFormatPublicMessage)
	b.AddOpaque(groupID)
	b.AddUint64(epoch)
	b.AddUint8(senderType)
	if senderType == SenderMember || senderType == SenderExternal {
		b.AddUint32(leaf)
	}
	b.AddOpaque(nil) // authenticated_data
	b.AddUint8(contentType)
	b.AddBytes(rest)
	out, _ := b.Bytes()
	return out
}

// Welcome builds an MLSMessage carrying a Welcome (RFC 9420, Section
// 12.4.3.1) for the given KeyPackageRefs with opaque encrypted parts.
func Welcome(suiteID uint16, refs [][]byte, encryptedGroupInfo []byte) []byte {
	b := codec.NewBuilder(nil)
	b.AddUint16(VersionMLS10)
	b.AddUint16(WireFormatWelcome)
	b.AddUint16(suiteID)
	b.AddVector(func(b *codec.Builder) {
		for _, r := range refs {
			b.AddOpaque(r)
			b.AddOpaque([]byte("kem output"))
			b.AddOpaque([]byte("ciphertext"))
		}
	})
	b.AddOpaque(encryptedGroupInfo)
	out, _ := b.Bytes()
	return out
}

// GroupInfo builds an MLSMessage carrying a GroupInfo (RFC 9420, Section
// 12.4.3) whose GroupContext names groupID and epoch, with an opaque rest.
func GroupInfo(suiteID uint16, groupID []byte, epoch uint64, rest []byte) []byte {
	b := codec.NewBuilder(nil)
	b.AddUint16(VersionMLS10)
	b.AddUint16(WireFormatGroupInfo)
	b.AddUint16(VersionMLS10)
	b.AddUint16(suiteID)
	b.AddOpaque(groupID)
	b.AddUint64(epoch)
	b.AddBytes(rest)
	out, _ := b.Bytes()
	return out
}
