package conformance

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

func init() { register("transcript-hashes.json", checkTranscriptHashes) }

// checkTranscriptHashes decodes each case's AuthenticatedContent, checks
// that it carries a Commit whose confirmation tag is the MAC of the new
// confirmed transcript hash, and advances both transcript hashes over it
// (RFC 9420, Sections 6.1 and 8.2).
func checkTranscriptHashes(data []byte) ([]Case, error) {
	var tcs []transcriptCase
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	var out []Case
	for i, tc := range tcs {
		out = append(out, Case{Name: caseName(i, tc.CipherSuite), Err: transcriptCaseErr(&tc)})
	}
	return out, nil
}

type transcriptCase struct {
	CipherSuite                  uint16 `json:"cipher_suite"`
	ConfirmationKey              Hex    `json:"confirmation_key"`
	AuthenticatedContent         Hex    `json:"authenticated_content"`
	InterimTranscriptHashBefore  Hex    `json:"interim_transcript_hash_before"`
	ConfirmedTranscriptHashAfter Hex    `json:"confirmed_transcript_hash_after"`
	InterimTranscriptHashAfter   Hex    `json:"interim_transcript_hash_after"`
}

func transcriptCaseErr(tc *transcriptCase) error {
	s, err := suite.Lookup(suite.ID(tc.CipherSuite))
	if err != nil {
		return err
	}
	ac, err := wire.Decode[wire.AuthenticatedContent](tc.AuthenticatedContent)
	if err != nil {
		return err
	}
	if ac.Content.ContentType != wire.ContentTypeCommit {
		return errors.New("authenticated_content does not carry a commit")
	}
	confirmed, interim, err := keyschedule.TranscriptHashes(s, tc.InterimTranscriptHashBefore, ac)
	if err != nil {
		return err
	}
	if !bytes.Equal(confirmed, tc.ConfirmedTranscriptHashAfter) {
		return mismatch("confirmed_transcript_hash_after", confirmed, tc.ConfirmedTranscriptHashAfter)
	}
	if !bytes.Equal(interim, tc.InterimTranscriptHashAfter) {
		return mismatch("interim_transcript_hash_after", interim, tc.InterimTranscriptHashAfter)
	}
	// A receiver hashes the commit's bytes as received, streamed (see
	// wire.FramedContent.SetReceivedBody): the same hash.
	if ac.Content.Commit.Raw() == nil {
		return errors.New("the decoded Commit does not keep its received bytes")
	}
	received := *ac
	received.Content.SetReceivedBody(ac.Content.Commit.Raw())
	streamed, err := keyschedule.ConfirmedTranscriptHash(s, tc.InterimTranscriptHashBefore, &received)
	if err != nil {
		return err
	}
	if !bytes.Equal(streamed, tc.ConfirmedTranscriptHashAfter) {
		return mismatch("confirmed_transcript_hash_after (from the received bytes)", streamed, tc.ConfirmedTranscriptHashAfter)
	}
	key := keyschedule.Secret(tc.ConfirmationKey)
	if !keyschedule.VerifyConfirmationTag(s, key, confirmed, ac.Auth.ConfirmationTag) {
		return errors.New("confirmation_tag does not verify")
	}
	// The tag must also fail under another key, or the check above proves
	// nothing.
	other := append(keyschedule.Secret(nil), key...)
	other[0] ^= 1
	if keyschedule.VerifyConfirmationTag(s, other, confirmed, ac.Auth.ConfirmationTag) {
		return errors.New("confirmation_tag verifies under a wrong key")
	}
	return nil
}
