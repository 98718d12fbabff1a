package conformance

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

func init() { register("welcome.json", checkWelcome) }

type welcomeCase struct {
	CipherSuite uint16 `json:"cipher_suite"`
	InitPriv    Hex    `json:"init_priv"`
	SignerPub   Hex    `json:"signer_pub"`
	KeyPackage  Hex    `json:"key_package"`
	Welcome     Hex    `json:"welcome"`
}

// checkWelcome follows the "Welcome" procedure of the interop vectors
// (RFC 9420, Section 12.4.3.1): find our entry by KeyPackageRef, decrypt the
// group secrets with init_priv, derive welcome_secret from joiner_secret with
// no PSKs and decrypt the GroupInfo, verify its signature with signer_pub,
// and recompute its confirmation_tag from the epoch's confirmation_key and
// the GroupContext's confirmed_transcript_hash.
func checkWelcome(data []byte) ([]Case, error) {
	var tcs []welcomeCase
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	var out []Case
	for i := range tcs {
		out = append(out, Case{Name: caseName(i, tcs[i].CipherSuite), Err: welcomeCaseErr(&tcs[i])})
	}
	return out, nil
}

func welcomeCaseErr(tc *welcomeCase) error {
	s, err := suite.Lookup(suite.ID(tc.CipherSuite))
	if err != nil {
		return err
	}
	kpMsg, err := wire.UnmarshalMLSMessage(tc.KeyPackage)
	if err != nil {
		return fmt.Errorf("key_package: %w", err)
	}
	wMsg, err := wire.UnmarshalMLSMessage(tc.Welcome)
	if err != nil {
		return fmt.Errorf("welcome: %w", err)
	}
	if kpMsg.KeyPackage == nil || wMsg.Welcome == nil {
		return errors.New("key_package or welcome has the wrong wire format")
	}
	gs, err := framing.OpenGroupSecrets(s, wMsg.Welcome, kpMsg.KeyPackage, tc.InitPriv)
	if err != nil {
		return fmt.Errorf("group secrets: %w", err)
	}
	if len(gs.PSKs) != 0 {
		return fmt.Errorf("group secrets name %d PSKs; the vector has none", len(gs.PSKs))
	}
	joiner, err := keyschedule.JoinerSecretFromBytes(s, gs.JoinerSecret)
	if err != nil {
		return err
	}
	member := joiner.WithPSK(nil)
	gi, err := framing.DecryptGroupInfo(s, member.WelcomeSecret(), wMsg.Welcome.EncryptedGroupInfo)
	if err != nil {
		return fmt.Errorf("group info: %w", err)
	}
	if err := framing.VerifyGroupInfo(s, tc.SignerPub, gi); err != nil {
		return err
	}
	gc, err := codec.Marshal(&gi.GroupContext)
	if err != nil {
		return err
	}
	epoch := member.Epoch(gc)
	if !epoch.VerifyConfirmationTag(gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag) {
		return errors.New("confirmation_tag does not match MAC(confirmation_key, confirmed_transcript_hash)")
	}
	return nil
}
