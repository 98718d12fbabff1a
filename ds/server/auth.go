package server

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
)

// AuthContent is what a login proof signs: struct { opaque challenge<V>;
// opaque credential<V>; opaque signature_key<V>; uint16 cipher_suite; }.
// Signing the credential and key with the challenge binds the proof of
// possession to that credential.
func AuthContent(suiteID uint16, signatureKey, challenge, credential []byte) []byte {
	b := codec.NewBuilder(nil)
	b.AddOpaque(challenge)
	b.AddOpaque(credential)
	b.AddOpaque(signatureKey)
	b.AddUint16(suiteID)
	out, _ := b.Bytes()
	return out
}

// SignAuth makes a login proof with signer.
func SignAuth(suiteID uint16, signer suite.Signer, challenge, credential []byte) ([]byte, error) {
	return signer.SignWithLabel(AuthLabel, AuthContent(suiteID, signer.PublicKey(), challenge, credential))
}

// VerifyAuth checks a login proof.
func VerifyAuth(suiteID uint16, signatureKey, challenge, credential, sig []byte) error {
	s, err := suite.Lookup(suite.ID(suiteID))
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if err := s.VerifyWithLabel(signatureKey, AuthLabel, AuthContent(suiteID, signatureKey, challenge, credential), sig); err != nil {
		return errors.New("login: signature does not verify")
	}
	return nil
}
