// Package mlsmsg is the delivery service's narrow view of MLS messages: it
// reads only the MLSMessage header fields RFC 9750, Section 8.4.3.2 lets a
// delivery service see (group id, epoch, content type, wire format) and the
// parts of a KeyPackage the directory must police (suite, lifetime,
// signatures, credential). It never decrypts or interprets content.
//
// It also builds such messages for tests and tools: KeyPackages signed with a
// real key, and PublicMessage/PrivateMessage envelopes around opaque bytes.
//
// The parser here is deliberately small and will give way to internal/wire
// once that package decodes every struct.
package mlsmsg

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
)

// Wire formats (RFC 9420, Section 6; IANA "MLS Wire Formats").
const (
	WireFormatPublicMessage  uint16 = 1
	WireFormatPrivateMessage uint16 = 2
	WireFormatWelcome        uint16 = 3
	WireFormatGroupInfo      uint16 = 4
	WireFormatKeyPackage     uint16 = 5
)

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

// ProtocolVersion mls10 (RFC 9420, Section 6).
const VersionMLS10 uint16 = 1

// ErrMalformed is wrapped by every decoding failure.
var ErrMalformed = codec.ErrMalformed

// DecodeError says which structure failed to decode.
type DecodeError struct {
	What string
}

func (e *DecodeError) Error() string { return "mlsmsg: malformed " + e.What }
func (e *DecodeError) Unwrap() error { return ErrMalformed }

func malformed(what string) error { return &DecodeError{What: what} }

// Header is what the delivery service learns from an MLSMessage.
type Header struct {
	Version     uint16
	WireFormat  uint16
	GroupID     []byte // Public/PrivateMessage, GroupInfo
	Epoch       uint64 // Public/PrivateMessage, GroupInfo
	ContentType uint8  // Public/PrivateMessage
	SenderType  uint8  // PublicMessage only; 0 when hidden (PrivateMessage)
	CipherSuite uint16 // Welcome, GroupInfo, KeyPackage
	// NewMembers lists the KeyPackageRefs a Welcome is addressed to.
	NewMembers [][]byte
	Size       int
}

// ParseHeader reads the MLSMessage header (RFC 9420, Section 6). For
// PublicMessage and PrivateMessage it reads the framing fields up to the
// content type and checks that the remaining fields are well-formed vectors
// where it can do so without interpreting content.
func ParseHeader(data []byte) (*Header, error) {
	h := &Header{Size: len(data)}
	r := codec.NewReader(data)
	if !r.ReadUint16(&h.Version) || !r.ReadUint16(&h.WireFormat) {
		return nil, malformed("MLSMessage header")
	}
	if h.Version != VersionMLS10 {
		return nil, malformed(fmt.Sprintf("MLSMessage: unsupported version %d", h.Version))
	}
	switch h.WireFormat {
	case WireFormatPublicMessage:
		// RFC 9420, Section 6.2: FramedContent starts the PublicMessage.
		var aad []byte
		if !r.ReadOpaque(&h.GroupID) || !r.ReadUint64(&h.Epoch) || !readSender(r, &h.SenderType) ||
			!r.ReadOpaque(&aad) || !r.ReadUint8(&h.ContentType) {
			return nil, malformed("PublicMessage")
		}
		if h.ContentType < ContentApplication || h.ContentType > ContentCommit {
			return nil, malformed("PublicMessage: content type")
		}
		// The body (content, auth data, membership tag) is the members'
		// business; it must at least be present.
		if r.Empty() {
			return nil, malformed("PublicMessage: missing content")
		}
	case WireFormatPrivateMessage:
		// RFC 9420, Section 6.3.
		var aad, esd, ct []byte
		if !r.ReadOpaque(&h.GroupID) || !r.ReadUint64(&h.Epoch) || !r.ReadUint8(&h.ContentType) ||
			!r.ReadOpaque(&aad) || !r.ReadOpaque(&esd) || !r.ReadOpaque(&ct) || !r.Empty() {
			return nil, malformed("PrivateMessage")
		}
		if h.ContentType < ContentApplication || h.ContentType > ContentCommit {
			return nil, malformed("PrivateMessage: content type")
		}
	case WireFormatWelcome:
		// RFC 9420, Section 12.4.3.1.
		var egi []byte
		ok := r.ReadUint16(&h.CipherSuite) && r.ReadList(func(s *codec.Reader) bool {
			var ref, kem, ct []byte
			if !s.ReadOpaque(&ref) || !s.ReadOpaque(&kem) || !s.ReadOpaque(&ct) {
				return false
			}
			h.NewMembers = append(h.NewMembers, ref)
			return true
		}) && r.ReadOpaque(&egi) && r.Empty()
		if !ok {
			return nil, malformed("Welcome")
		}
	case WireFormatGroupInfo:
		// RFC 9420, Section 12.4.3: GroupInfo starts with its GroupContext
		// (Section 8.1).
		var v uint16
		if !r.ReadUint16(&v) || !r.ReadUint16(&h.CipherSuite) || !r.ReadOpaque(&h.GroupID) || !r.ReadUint64(&h.Epoch) {
			return nil, malformed("GroupInfo")
		}
		if r.Empty() {
			return nil, malformed("GroupInfo: truncated")
		}
	case WireFormatKeyPackage:
		kp, err := parseKeyPackage(r)
		if err != nil {
			return nil, err
		}
		h.CipherSuite = kp.CipherSuite
	default:
		return nil, malformed(fmt.Sprintf("MLSMessage: unknown wire format %d", h.WireFormat))
	}
	return h, nil
}

// readSender reads a Sender (RFC 9420, Section 6).
func readSender(r *codec.Reader, t *uint8) bool {
	if !r.ReadUint8(t) {
		return false
	}
	var idx uint32
	switch *t {
	case SenderMember, SenderExternal:
		return r.ReadUint32(&idx)
	case SenderNewMemberProposal, SenderNewMemberCommit:
		return true
	}
	return false
}

// ErrUnsupported is returned for valid input the delivery service does not
// handle (for example an unknown credential type).
var ErrUnsupported = errors.New("mlsmsg: unsupported")
