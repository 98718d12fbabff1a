package wire

import (
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
)

// --- RFC 9420, Section 6 ---

// Marshal encodes x; the body pointer that x.WireFormat selects must be set.
// RFC 9420, Section 6.
func (x *MLSMessage) Marshal(b *codec.Builder) {
	b.AddUint16(uint16(x.Version))
	b.AddUint16(uint16(x.WireFormat))
	var body codec.Marshaler
	switch x.WireFormat {
	case WireFormatPublicMessage:
		body = nilIfNil(x.PublicMessage)
	case WireFormatPrivateMessage:
		body = nilIfNil(x.PrivateMessage)
	case WireFormatWelcome:
		body = nilIfNil(x.Welcome)
	case WireFormatGroupInfo:
		body = nilIfNil(x.GroupInfo)
	case WireFormatKeyPackage:
		body = nilIfNil(x.KeyPackage)
	default:
		b.SetError(errUnknownSelect)
		return
	}
	if body == nil {
		b.SetError(errMissingBody)
		return
	}
	body.Marshal(b)
}

// Unmarshal decodes x from r; x aliases r's input. A version other than
// mls10 and an unknown wire format are malformed.
func (x *MLSMessage) Unmarshal(r *codec.Reader) bool { return unmarshalFrom(r, x.decode) }

func (x *MLSMessage) decode(d *decoder) bool {
	*x = MLSMessage{}
	off := d.off
	if !readU16(d, &x.Version) {
		return false
	}
	if x.Version != ProtocolVersionMLS10 {
		return d.errAt(off, fmt.Sprintf("unsupported protocol version %d (only mls10 = 1)", x.Version))
	}
	off = d.off
	if !readU16(d, &x.WireFormat) {
		return false
	}
	switch x.WireFormat {
	case WireFormatPublicMessage:
		x.PublicMessage = new(PublicMessage)
		return x.PublicMessage.decode(d)
	case WireFormatPrivateMessage:
		x.PrivateMessage = new(PrivateMessage)
		return x.PrivateMessage.decode(d)
	case WireFormatWelcome:
		x.Welcome = new(Welcome)
		return x.Welcome.decode(d)
	case WireFormatGroupInfo:
		x.GroupInfo = new(GroupInfo)
		return x.GroupInfo.decode(d)
	case WireFormatKeyPackage:
		x.KeyPackage = new(KeyPackage)
		return x.KeyPackage.decode(d)
	}
	return d.errAt(off, fmt.Sprintf("unknown wire format %d", x.WireFormat))
}

// UnmarshalMLSMessage decodes a complete MLSMessage. It copies data once;
// errors are *DecodeError.
func UnmarshalMLSMessage(data []byte) (*MLSMessage, error) { return Decode[MLSMessage](data) }

// UnmarshalKeyPackage decodes a bare KeyPackage (not MLSMessage-wrapped).
func UnmarshalKeyPackage(data []byte) (*KeyPackage, error) { return Decode[KeyPackage](data) }

// UnmarshalWelcome decodes a bare Welcome (not MLSMessage-wrapped).
func UnmarshalWelcome(data []byte) (*Welcome, error) { return Decode[Welcome](data) }

// UnmarshalGroupInfo decodes a bare GroupInfo (not MLSMessage-wrapped).
func UnmarshalGroupInfo(data []byte) (*GroupInfo, error) { return Decode[GroupInfo](data) }

// UnmarshalLeafNode decodes a LeafNode.
func UnmarshalLeafNode(data []byte) (*LeafNode, error) { return Decode[LeafNode](data) }

// UnmarshalRatchetTree decodes optional<Node> ratchet_tree<V>, the
// ratchet_tree extension's data.
func UnmarshalRatchetTree(data []byte) (RatchetTree, error) {
	t, err := Decode[RatchetTree](data)
	if err != nil {
		return nil, err
	}
	return *t, nil
}

// UnmarshalGroupSecrets decodes GroupSecrets, the plaintext of
// EncryptedGroupSecrets.
func UnmarshalGroupSecrets(data []byte) (*GroupSecrets, error) { return Decode[GroupSecrets](data) }

// UnmarshalSenderData decodes SenderData, the plaintext of
// PrivateMessage.encrypted_sender_data.
func UnmarshalSenderData(data []byte) (*SenderData, error) { return Decode[SenderData](data) }

// Encode returns m's encoding. It is codec.Marshal, here so callers of this
// package need not import codec.
func Encode(m codec.Marshaler) ([]byte, error) { return codec.Marshal(m) }
