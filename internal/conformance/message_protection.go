package conformance

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

func init() { register("message-protection.json", checkMessageProtection) }

type messageProtectionCase struct {
	CipherSuite             uint16 `json:"cipher_suite"`
	GroupID                 Hex    `json:"group_id"`
	Epoch                   Num    `json:"epoch"`
	TreeHash                Hex    `json:"tree_hash"`
	ConfirmedTranscriptHash Hex    `json:"confirmed_transcript_hash"`
	SignaturePriv           Hex    `json:"signature_priv"`
	SignaturePub            Hex    `json:"signature_pub"`
	EncryptionSecret        Hex    `json:"encryption_secret"`
	SenderDataSecret        Hex    `json:"sender_data_secret"`
	MembershipKey           Hex    `json:"membership_key"`
	Proposal                Hex    `json:"proposal"`
	ProposalPub             Hex    `json:"proposal_pub"`
	ProposalPriv            Hex    `json:"proposal_priv"`
	Commit                  Hex    `json:"commit"`
	CommitPub               Hex    `json:"commit_pub"`
	CommitPriv              Hex    `json:"commit_priv"`
	Application             Hex    `json:"application"`
	ApplicationPriv         Hex    `json:"application_priv"`
}

// checkMessageProtection follows the "Message Protection" procedure of the
// interop vectors (RFC 9420, Section 6): for the proposal, the commit and the
// application data, unprotect the given PublicMessage (not for application)
// and PrivateMessage sent by leaf 1 of a two-member group and compare the
// content; then protect the raw value ourselves as a PublicMessage (which
// must fail for application data) and as a PrivateMessage, and unprotect
// what we produced.
func checkMessageProtection(data []byte) ([]Case, error) {
	var tcs []messageProtectionCase
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	var out []Case
	for i := range tcs {
		out = append(out, Case{Name: caseName(i, tcs[i].CipherSuite), Err: messageProtectionCaseErr(&tcs[i])})
	}
	return out, nil
}

// mpSender is the sender of every message in the vectors.
const mpSender = 1

func messageProtectionCaseErr(tc *messageProtectionCase) error {
	s, err := suite.Lookup(suite.ID(tc.CipherSuite))
	if err != nil {
		return err
	}
	ctx := &wire.GroupContext{
		Version:                 wire.ProtocolVersionMLS10,
		CipherSuite:             wire.CipherSuite(tc.CipherSuite),
		GroupID:                 tc.GroupID,
		Epoch:                   uint64(tc.Epoch),
		TreeHash:                tc.TreeHash,
		ConfirmedTranscriptHash: tc.ConfirmedTranscriptHash,
	}
	signer, err := s.NewSigner(tc.SignaturePriv)
	if err != nil {
		return fmt.Errorf("signature_priv: %w", err)
	}
	members := func(leaf uint32) ([]byte, bool) {
		if leaf == mpSender {
			return tc.SignaturePub, true
		}
		return nil, false
	}
	// A fresh secret tree for two members, per message as the procedure says.
	newEpoch := func() (*framing.Epoch, error) {
		tree, err := secrettree.New(s, keyschedule.Secret(tc.EncryptionSecret), 2, secrettree.Config{})
		if err != nil {
			return nil, err
		}
		return &framing.Epoch{
			Suite:            s,
			Context:          ctx,
			MembershipKey:    keyschedule.Secret(tc.MembershipKey),
			SenderDataSecret: keyschedule.Secret(tc.SenderDataSecret),
			Tree:             tree,
		}, nil
	}

	for _, m := range []struct {
		name      string
		ct        wire.ContentType
		raw       []byte
		pub, priv []byte
	}{
		{"proposal", wire.ContentTypeProposal, tc.Proposal, tc.ProposalPub, tc.ProposalPriv},
		{"commit", wire.ContentTypeCommit, tc.Commit, tc.CommitPub, tc.CommitPriv},
		{"application", wire.ContentTypeApplication, tc.Application, nil, tc.ApplicationPriv},
	} {
		if err := mpMessage(s, ctx, signer, members, newEpoch, m.ct, m.raw, m.pub, m.priv); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return nil
}

func mpMessage(s *suite.Suite, ctx *wire.GroupContext, signer suite.Signer, members framing.MemberKeys,
	newEpoch func() (*framing.Epoch, error), ct wire.ContentType, raw, pubMsg, privMsg []byte) error {
	var confirmationTag []byte // a commit carries one; reuse the vector's

	// The given PublicMessage verifies and carries the raw value.
	if ct != wire.ContentTypeApplication {
		e, err := newEpoch()
		if err != nil {
			return err
		}
		pm, err := mpDecode(pubMsg, wire.WireFormatPublicMessage)
		if err != nil {
			return fmt.Errorf("pub: %w", err)
		}
		ac, err := e.UnprotectPublic(pm.PublicMessage, members)
		if err != nil {
			return fmt.Errorf("unprotecting pub: %w", err)
		}
		if err := mpCompare(ac, ct, raw); err != nil {
			return fmt.Errorf("pub: %w", err)
		}
		confirmationTag = ac.Auth.ConfirmationTag
	}

	// The given PrivateMessage decrypts, verifies and carries the raw value.
	e, err := newEpoch()
	if err != nil {
		return err
	}
	pm, err := mpDecode(privMsg, wire.WireFormatPrivateMessage)
	if err != nil {
		return fmt.Errorf("priv: %w", err)
	}
	ac, err := e.UnprotectPrivate(pm.PrivateMessage, members)
	if err != nil {
		return fmt.Errorf("unprotecting priv: %w", err)
	}
	if err := mpCompare(ac, ct, raw); err != nil {
		return fmt.Errorf("priv: %w", err)
	}
	if confirmationTag == nil {
		confirmationTag = ac.Auth.ConfirmationTag
	}

	content := &wire.FramedContent{
		GroupID:     ctx.GroupID,
		Epoch:       ctx.Epoch,
		Sender:      wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: mpSender},
		ContentType: ct,
	}
	switch ct {
	case wire.ContentTypeApplication:
		content.ApplicationData = raw
	case wire.ContentTypeProposal:
		p, err := wire.Decode[wire.Proposal](raw)
		if err != nil {
			return fmt.Errorf("proposal: %w", err)
		}
		content.Proposal = p
	case wire.ContentTypeCommit:
		c, err := wire.Decode[wire.Commit](raw)
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		content.Commit = c
	}

	// Our own PublicMessage verifies; application data must be refused.
	{
		e, err := newEpoch()
		if err != nil {
			return err
		}
		ac, err := framing.Sign(signer, wire.WireFormatPublicMessage, content, ctx)
		if err != nil {
			return err
		}
		ac.Auth.ConfirmationTag = confirmationTag
		pm, err := e.ProtectPublic(ac)
		if ct == wire.ContentTypeApplication {
			if !errors.Is(err, framing.ErrWrongWireFormat) {
				return fmt.Errorf("protecting application data as PublicMessage: got %v, want ErrWrongWireFormat", err)
			}
		} else {
			if err != nil {
				return fmt.Errorf("protecting as PublicMessage: %w", err)
			}
			msg, err := mpRoundTrip(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10,
				WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
			if err != nil {
				return err
			}
			got, err := e.UnprotectPublic(msg.PublicMessage, members)
			if err != nil {
				return fmt.Errorf("unprotecting our PublicMessage: %w", err)
			}
			if err := mpCompare(got, ct, raw); err != nil {
				return fmt.Errorf("our PublicMessage: %w", err)
			}
		}
	}

	// Our own PrivateMessage unprotects with a receiver's fresh tree.
	sender, err := newEpoch()
	if err != nil {
		return err
	}
	receiver, err := newEpoch()
	if err != nil {
		return err
	}
	ac, err = framing.Sign(signer, wire.WireFormatPrivateMessage, content, ctx)
	if err != nil {
		return err
	}
	ac.Auth.ConfirmationTag = confirmationTag
	priv, err := sender.ProtectPrivate(ac, 0, rand.Reader)
	if err != nil {
		return fmt.Errorf("protecting as PrivateMessage: %w", err)
	}
	msg, err := mpRoundTrip(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10,
		WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: priv})
	if err != nil {
		return err
	}
	got, err := receiver.UnprotectPrivate(msg.PrivateMessage, members)
	if err != nil {
		return fmt.Errorf("unprotecting our PrivateMessage: %w", err)
	}
	return mpCompare(got, ct, raw)
}

// mpDecode decodes an MLSMessage of wire format wf.
func mpDecode(b []byte, wf wire.WireFormat) (*wire.MLSMessage, error) {
	m, err := wire.UnmarshalMLSMessage(b)
	if err != nil {
		return nil, err
	}
	if m.WireFormat != wf {
		return nil, fmt.Errorf("wire format %v, want %v", m.WireFormat, wf)
	}
	return m, nil
}

// mpRoundTrip encodes and decodes m, as a receiver would see it.
func mpRoundTrip(m *wire.MLSMessage) (*wire.MLSMessage, error) {
	b, err := codec.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding MLSMessage: %w", err)
	}
	return mpDecode(b, m.WireFormat)
}

// mpCompare checks that ac carries the raw proposal, commit or application
// data of the vector.
func mpCompare(ac *wire.AuthenticatedContent, ct wire.ContentType, raw []byte) error {
	if ac.Content.ContentType != ct {
		return fmt.Errorf("content type %v, want %v", ac.Content.ContentType, ct)
	}
	if ac.Content.Sender != (wire.Sender{SenderType: wire.SenderTypeMember, LeafIndex: mpSender}) {
		return fmt.Errorf("sender %+v, want member %d", ac.Content.Sender, mpSender)
	}
	var got []byte
	var err error
	switch ct {
	case wire.ContentTypeApplication:
		got = ac.Content.ApplicationData
	case wire.ContentTypeProposal:
		got, err = codec.Marshal(ac.Content.Proposal)
	case wire.ContentTypeCommit:
		got, err = codec.Marshal(ac.Content.Commit)
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(got, raw) {
		return mismatch("content", got, raw)
	}
	return nil
}
