// Package mlsmsg is the delivery service's narrow view of MLS messages: it
// decodes each message strictly with internal/wire, then keeps only what RFC
// 9750, Section 8.4.3.2 lets a delivery service see (group id, epoch,
// content type, wire format, size) and the parts of a KeyPackage the
// directory must police (suite, lifetime, signatures, credential). It never
// decrypts or interprets content.
//
// It also builds well-formed messages for tests and tools: KeyPackages
// signed with a real key, and PublicMessage/PrivateMessage, Welcome and
// GroupInfo envelopes around opaque bytes.
package mlsmsg

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/wire"
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

// VersionMLS10 is ProtocolVersion mls10 (RFC 9420, Section 6).
const VersionMLS10 uint16 = 1

// ErrMalformed is wrapped by every decoding failure.
var ErrMalformed = codec.ErrMalformed

// DecodeError says which structure failed to decode and why.
type DecodeError struct {
	What string
	Err  error // the internal/wire error, if any
}

func (e *DecodeError) Error() string {
	if e.Err != nil {
		return "mlsmsg: malformed " + e.What + ": " + e.Err.Error()
	}
	return "mlsmsg: malformed " + e.What
}
func (e *DecodeError) Unwrap() error { return ErrMalformed }

func malformed(what string, err error) error { return &DecodeError{What: what, Err: err} }

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

// ParseHeader decodes a whole MLSMessage (RFC 9420, Section 6) strictly and
// returns its header. Only mls10 is accepted.
func ParseHeader(data []byte) (*Header, error) {
	m, err := wire.UnmarshalMLSMessage(data)
	if err != nil {
		return nil, malformed("MLSMessage", err)
	}
	if m.Version != wire.ProtocolVersionMLS10 {
		return nil, malformed(fmt.Sprintf("MLSMessage: unsupported version %d", m.Version), nil)
	}
	h := &Header{Version: uint16(m.Version), WireFormat: uint16(m.WireFormat), Size: len(data)}
	switch {
	case m.PublicMessage != nil:
		c := &m.PublicMessage.Content
		h.GroupID, h.Epoch, h.ContentType, h.SenderType = c.GroupID, c.Epoch, uint8(c.ContentType), uint8(c.Sender.SenderType)
	case m.PrivateMessage != nil:
		p := m.PrivateMessage
		h.GroupID, h.Epoch, h.ContentType = p.GroupID, p.Epoch, uint8(p.ContentType)
	case m.Welcome != nil:
		h.CipherSuite = uint16(m.Welcome.CipherSuite)
		for _, s := range m.Welcome.Secrets {
			h.NewMembers = append(h.NewMembers, s.NewMember)
		}
	case m.GroupInfo != nil:
		gc := &m.GroupInfo.GroupContext
		h.GroupID, h.Epoch, h.CipherSuite = gc.GroupID, gc.Epoch, uint16(gc.CipherSuite)
	case m.KeyPackage != nil:
		h.CipherSuite = uint16(m.KeyPackage.CipherSuite)
	default:
		return nil, malformed("MLSMessage: no body", nil)
	}
	if (h.WireFormat == WireFormatPublicMessage || h.WireFormat == WireFormatPrivateMessage) &&
		(h.ContentType < ContentApplication || h.ContentType > ContentCommit) {
		return nil, malformed("MLSMessage: content type", nil)
	}
	return h, nil
}

// ErrUnsupported is returned for valid input the delivery service does not
// handle (for example an unknown credential type).
var ErrUnsupported = errors.New("mlsmsg: unsupported")
