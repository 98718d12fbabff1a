package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mlskit/mlskit/mls"
)

func init() {
	register("passive-client-welcome.json", checkPassiveClient)
	register("passive-client-handling-commit.json", checkPassiveClient)
	register("passive-client-random.json", checkPassiveClient)
}

type passiveEpoch struct {
	Proposals          []Hex `json:"proposals"`
	Commit             Hex   `json:"commit"`
	EpochAuthenticator Hex   `json:"epoch_authenticator"`
}

type passiveCase struct {
	CipherSuite  Num `json:"cipher_suite"`
	ExternalPSKs []struct {
		ID  Hex `json:"psk_id"`
		PSK Hex `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                Hex            `json:"key_package"`
	SignaturePriv             Hex            `json:"signature_priv"`
	EncryptionPriv            Hex            `json:"encryption_priv"`
	InitPriv                  Hex            `json:"init_priv"`
	Welcome                   Hex            `json:"welcome"`
	RatchetTree               Hex            `json:"ratchet_tree"`
	InitialEpochAuthenticator Hex            `json:"initial_epoch_authenticator"`
	Epochs                    []passiveEpoch `json:"epochs"`
}

// checkPassiveClient joins from the Welcome and follows every epoch
// (interop-test-vectors.md, "Passive Client Scenarios"), comparing the
// epoch authenticator after each step.
func checkPassiveClient(data []byte) ([]Case, error) {
	var tcs []passiveCase
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	out := make([]Case, 0, len(tcs))
	for i, tc := range tcs {
		out = append(out, Case{Name: caseName(i, uint16(tc.CipherSuite)), Err: passiveClientCase(&tc)})
	}
	return out, nil
}

func passiveClientCase(tc *passiveCase) error {
	cs := mls.CipherSuite(tc.CipherSuite)
	psks := &mls.PSKMap{}
	for _, p := range tc.ExternalPSKs {
		psks.Put(p.ID, p.PSK)
	}
	cfg := &mls.Config{
		CredentialValidator: mls.AcceptAllCredentials{},
		// The vectors were made at some past time; lifetimes are not
		// what they test.
		Now:  func() time.Time { return time.Time{} },
		PSKs: psks,
	}
	kp, err := mls.ParseKeyPackage(tc.KeyPackage)
	if err != nil {
		return fmt.Errorf("key package: %w", err)
	}
	sig, err := mls.NewSignatureKeyPair(cs, tc.SignaturePriv)
	if err != nil {
		return fmt.Errorf("signature key: %w", err)
	}
	if !bytes.Equal(sig.PublicKey(), kp.SignatureKey()) {
		return fmt.Errorf("signature_priv does not match the KeyPackage")
	}
	bundle := &mls.KeyPackageBundle{KeyPackage: kp, InitKey: tc.InitPriv, LeafKey: tc.EncryptionPriv, Signer: sig}
	g, err := mls.JoinFromWelcome(cfg, tc.Welcome, bundle, &mls.JoinOptions{RatchetTree: tc.RatchetTree})
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if got := g.EpochAuthenticator(); !bytes.Equal(got, tc.InitialEpochAuthenticator) {
		return mismatch("initial epoch authenticator", got, tc.InitialEpochAuthenticator)
	}
	for i, ep := range tc.Epochs {
		for j, p := range ep.Proposals {
			if _, err := g.Process(p); err != nil {
				return fmt.Errorf("epoch %d proposal %d: %w", i, j, err)
			}
		}
		r, err := g.Process(ep.Commit)
		if err != nil {
			return fmt.Errorf("epoch %d commit: %w", i, err)
		}
		if r.Commit == nil {
			return fmt.Errorf("epoch %d: commit message is not a commit", i)
		}
		if err := g.MergeStagedCommit(r.Commit); err != nil {
			return fmt.Errorf("epoch %d merge: %w", i, err)
		}
		if got := g.EpochAuthenticator(); !bytes.Equal(got, ep.EpochAuthenticator) {
			return mismatch(fmt.Sprintf("epoch %d authenticator", i), got, ep.EpochAuthenticator)
		}
	}
	return nil
}
