package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/wire"
)

func init() { register("messages.json", checkMessages) }

// messagesCase is one case of messages.json: each field is one serialized
// struct (interop-test-vectors, "Messages").
type messagesCase struct {
	MLSWelcome                     Hex `json:"mls_welcome"`
	MLSGroupInfo                   Hex `json:"mls_group_info"`
	MLSKeyPackage                  Hex `json:"mls_key_package"`
	RatchetTree                    Hex `json:"ratchet_tree"`
	GroupSecrets                   Hex `json:"group_secrets"`
	AddProposal                    Hex `json:"add_proposal"`
	UpdateProposal                 Hex `json:"update_proposal"`
	RemoveProposal                 Hex `json:"remove_proposal"`
	PreSharedKeyProposal           Hex `json:"pre_shared_key_proposal"`
	ReInitProposal                 Hex `json:"re_init_proposal"`
	ExternalInitProposal           Hex `json:"external_init_proposal"`
	GroupContextExtensionsProposal Hex `json:"group_context_extensions_proposal"`
	Commit                         Hex `json:"commit"`
	PublicMessageApplication       Hex `json:"public_message_application"`
	PublicMessageProposal          Hex `json:"public_message_proposal"`
	PublicMessageCommit            Hex `json:"public_message_commit"`
	PrivateMessage                 Hex `json:"private_message"`
}

// checkMessages: every field decodes as its struct and re-encodes to the same
// bytes (RFC 9420 syntax; interop-test-vectors "Messages"). The MLSMessage
// fields must also carry the wire format (and, for public messages, the
// content type) their name says, and structs that keep their received
// encoding must keep exactly the bytes they were decoded from.
func checkMessages(data []byte) ([]Case, error) {
	var tcs []messagesCase
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	out := make([]Case, 0, len(tcs))
	for i := range tcs {
		out = append(out, Case{Name: caseName(i, 0), Err: checkMessagesCase(&tcs[i])})
	}
	return out, nil
}

func checkMessagesCase(tc *messagesCase) error {
	type field struct {
		name string
		data []byte
		fn   func([]byte) error
	}
	mls := func(wf wire.WireFormat, ct wire.ContentType) func([]byte) error {
		return func(b []byte) error { return checkMLSMessage(b, wf, ct) }
	}
	fields := []field{
		{"mls_welcome", tc.MLSWelcome, mls(wire.WireFormatWelcome, 0)},
		{"mls_group_info", tc.MLSGroupInfo, mls(wire.WireFormatGroupInfo, 0)},
		{"mls_key_package", tc.MLSKeyPackage, mls(wire.WireFormatKeyPackage, 0)},
		{"ratchet_tree", tc.RatchetTree, roundTrip[wire.RatchetTree]},
		{"group_secrets", tc.GroupSecrets, roundTrip[wire.GroupSecrets]},
		{"add_proposal", tc.AddProposal, roundTrip[wire.Add]},
		{"update_proposal", tc.UpdateProposal, roundTrip[wire.Update]},
		{"remove_proposal", tc.RemoveProposal, roundTrip[wire.Remove]},
		{"pre_shared_key_proposal", tc.PreSharedKeyProposal, roundTrip[wire.PreSharedKey]},
		{"re_init_proposal", tc.ReInitProposal, roundTrip[wire.ReInit]},
		{"external_init_proposal", tc.ExternalInitProposal, roundTrip[wire.ExternalInit]},
		{"group_context_extensions_proposal", tc.GroupContextExtensionsProposal, roundTrip[wire.GroupContextExtensions]},
		{"commit", tc.Commit, checkCommit},
		{"public_message_application", tc.PublicMessageApplication, mls(wire.WireFormatPublicMessage, wire.ContentTypeApplication)},
		{"public_message_proposal", tc.PublicMessageProposal, mls(wire.WireFormatPublicMessage, wire.ContentTypeProposal)},
		{"public_message_commit", tc.PublicMessageCommit, mls(wire.WireFormatPublicMessage, wire.ContentTypeCommit)},
		{"private_message", tc.PrivateMessage, mls(wire.WireFormatPrivateMessage, 0)},
	}
	for _, f := range fields {
		if f.data == nil {
			return fmt.Errorf("%s: missing from the vector", f.name)
		}
		if err := f.fn(f.data); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}

// roundTrip decodes data as a T and checks that it re-encodes to data.
func roundTrip[T any, P interface {
	*T
	wire.Unmarshaler
	codec.Marshaler
}](data []byte) error {
	_, err := roundTripValue[T, P](data)
	return err
}

func roundTripValue[T any, P interface {
	*T
	wire.Unmarshaler
	codec.Marshaler
}](data []byte) (*T, error) {
	x, err := wire.Decode[T, P](data)
	if err != nil {
		return nil, err
	}
	enc, err := codec.Marshal(P(x))
	if err != nil {
		return nil, fmt.Errorf("re-encoding: %w", err)
	}
	if !bytes.Equal(enc, data) {
		return nil, mismatch("re-encoding", enc, data)
	}
	return x, nil
}

func checkCommit(data []byte) error {
	c, err := roundTripValue[wire.Commit](data)
	if err != nil {
		return err
	}
	if !bytes.Equal(c.Raw(), data) {
		return mismatch("Commit.Raw", c.Raw(), data)
	}
	return nil
}

// checkMLSMessage round-trips an MLSMessage and checks its wire format, its
// content type (ct, for public messages), and the received encoding kept by
// its body.
func checkMLSMessage(data []byte, wf wire.WireFormat, ct wire.ContentType) error {
	m, err := roundTripValue[wire.MLSMessage](data)
	if err != nil {
		return err
	}
	if m.WireFormat != wf {
		return fmt.Errorf("wire format %v, want %v", m.WireFormat, wf)
	}
	body := data[4:] // after version and wire_format
	var raw []byte
	switch wf {
	case wire.WireFormatKeyPackage:
		raw = m.KeyPackage.Raw()
	case wire.WireFormatGroupInfo:
		raw = m.GroupInfo.Raw()
	case wire.WireFormatPublicMessage:
		raw = m.PublicMessage.Raw()
		if got := m.PublicMessage.Content.ContentType; got != ct {
			return fmt.Errorf("content type %v, want %v", got, ct)
		}
		// The AuthenticatedContent is wire_format || content || auth as received.
		ac := m.PublicMessage.AuthenticatedContent()
		enc, err := codec.Marshal(ac)
		if err != nil {
			return fmt.Errorf("encoding AuthenticatedContent: %w", err)
		}
		if !bytes.Equal(ac.Raw(), enc) {
			return mismatch("AuthenticatedContent.Raw", ac.Raw(), enc)
		}
	default:
		return nil
	}
	if !bytes.Equal(raw, body) {
		return mismatch("Raw", raw, body)
	}
	return nil
}
