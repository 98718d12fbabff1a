package keyschedule

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// ErrNotCommit: transcript hashes cover only AuthenticatedContent carrying a
// Commit (RFC 9420, Section 8.2).
var ErrNotCommit = errors.New("mls: transcript hash input is not a commit")

// ConfirmedTranscriptHash computes the confirmed transcript hash of the epoch
// that the Commit in ac starts (RFC 9420, Section 8.2):
//
//	confirmed_transcript_hash_[epoch] =
//	    Hash(interim_transcript_hash_[epoch - 1] ||
//	         ConfirmedTranscriptHashInput_[epoch])
//
// where ConfirmedTranscriptHashInput is ac's wire_format, content and
// signature. interimBefore is empty for the first Commit of a group.
func ConfirmedTranscriptHash(s *suite.Suite, interimBefore []byte, ac *wire.AuthenticatedContent) ([]byte, error) {
	if ac.Content.ContentType != wire.ContentTypeCommit {
		return nil, ErrNotCommit
	}
	if body := ac.Content.ReceivedBody(); body != nil {
		return streamConfirmedTranscriptHash(s, interimBefore, ac, body)
	}
	in := wire.ConfirmedTranscriptHashInput{
		WireFormat: ac.WireFormat,
		Content:    ac.Content,
		Signature:  ac.Auth.Signature,
	}
	b := codec.NewBuilder(append(make([]byte, 0, len(interimBefore)+256), interimBefore...))
	in.Marshal(b)
	buf, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: encoding ConfirmedTranscriptHashInput: %w", err)
	}
	return s.Hash(buf), nil
}

// streamConfirmedTranscriptHash is ConfirmedTranscriptHash for a received
// content whose body is still the received bytes: it feeds the hash the
// encoding piece by piece instead of copying a commit that, on a sparse
// tree, carries a ciphertext per member.
func streamConfirmedTranscriptHash(s *suite.Suite, interimBefore []byte, ac *wire.AuthenticatedContent, body []byte) ([]byte, error) {
	b := codec.NewBuilder(make([]byte, 0, 256))
	b.AddUint16(uint16(ac.WireFormat))
	ac.Content.MarshalHead(b)
	head, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: encoding ConfirmedTranscriptHashInput: %w", err)
	}
	t := codec.NewBuilder(make([]byte, 0, 4+len(ac.Auth.Signature)))
	t.AddOpaque(ac.Auth.Signature)
	tail, err := t.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: encoding ConfirmedTranscriptHashInput: %w", err)
	}
	h := s.NewHash()
	h.Write(interimBefore)
	h.Write(head)
	h.Write(body)
	h.Write(tail)
	return h.Sum(make([]byte, 0, s.HashSize())), nil
}

// InterimTranscriptHash computes (RFC 9420, Section 8.2)
//
//	interim_transcript_hash_[epoch] =
//	    Hash(confirmed_transcript_hash_[epoch] ||
//	         InterimTranscriptHashInput_[epoch])
//
// where InterimTranscriptHashInput carries the Commit's confirmation_tag.
// A new member uses the confirmation_tag of the GroupInfo (Section 12.4.3.1).
func InterimTranscriptHash(s *suite.Suite, confirmed, confirmationTag []byte) ([]byte, error) {
	b := codec.NewBuilder(append(make([]byte, 0, len(confirmed)+len(confirmationTag)+4), confirmed...))
	in := wire.InterimTranscriptHashInput{ConfirmationTag: confirmationTag}
	in.Marshal(b)
	buf, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: encoding InterimTranscriptHashInput: %w", err)
	}
	return s.Hash(buf), nil
}

// TranscriptHashes advances both transcript hashes over the Commit in ac,
// using the confirmation tag it carries (RFC 9420, Section 8.2). It does not
// verify the tag: check it with VerifyConfirmationTag against the new
// epoch's confirmation_key and the returned confirmed hash.
func TranscriptHashes(s *suite.Suite, interimBefore []byte, ac *wire.AuthenticatedContent) (confirmed, interim []byte, err error) {
	confirmed, err = ConfirmedTranscriptHash(s, interimBefore, ac)
	if err != nil {
		return nil, nil, err
	}
	interim, err = InterimTranscriptHash(s, confirmed, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	return confirmed, interim, nil
}
