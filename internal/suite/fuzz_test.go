package suite_test

import (
	"errors"
	"testing"

	"github.com/mlskit/mlskit/internal/suite"
)

// FuzzPeerInput: bytes a peer controls (public keys, signatures, KEM outputs,
// ciphertexts) never panic and fail only with the package's sentinels.
func FuzzPeerInput(f *testing.F) {
	ids := suite.Supported()
	for i := range ids {
		s, _ := suite.Lookup(ids[i])
		_, pub, _ := s.GenerateKEMKey(seeded(20))
		kemOut, ct, _ := s.EncryptWithLabel(pub, "L", nil, []byte("p"))
		priv, spub, _ := s.GenerateSignatureKey(seeded(21))
		sig, _ := s.SignWithLabel(priv, "L", nil)
		f.Add(uint8(i), spub, sig, pub, kemOut, ct)
	}
	f.Fuzz(func(t *testing.T, which uint8, spub, sig, kpub, kemOut, ct []byte) {
		s, _ := suite.Lookup(ids[int(which)%len(ids)])
		if err := s.VerifyWithLabel(spub, "L", nil, sig); err != nil &&
			!errors.Is(err, suite.ErrInvalidSignature) && !errors.Is(err, suite.ErrInvalidKey) {
			t.Errorf("VerifyWithLabel: unexpected error %v", err)
		}
		if err := s.ValidateKEMPublicKey(kpub); err != nil && !errors.Is(err, suite.ErrInvalidKey) {
			t.Errorf("ValidateKEMPublicKey: unexpected error %v", err)
		}
		if _, _, err := s.EncryptWithLabel(kpub, "L", nil, []byte("p")); err != nil && !errors.Is(err, suite.ErrInvalidKey) {
			t.Errorf("EncryptWithLabel: unexpected error %v", err)
		}
		priv, _, _ := s.GenerateKEMKey(seeded(22))
		if _, err := s.DecryptWithLabel(priv, "L", nil, kemOut, ct); err != nil && !errors.Is(err, suite.ErrDecrypt) {
			t.Errorf("DecryptWithLabel: unexpected error %v", err)
		}
		if _, err := s.HPKEExportReceiver(priv, kemOut, nil, []byte("x"), 32); err != nil && !errors.Is(err, suite.ErrDecrypt) {
			t.Errorf("HPKEExportReceiver: unexpected error %v", err)
		}
		key := make([]byte, s.KeySize())
		nonce := make([]byte, s.NonceSize())
		if _, err := s.Open(key, nonce, nil, ct); err != nil && !errors.Is(err, suite.ErrDecrypt) {
			t.Errorf("Open: unexpected error %v", err)
		}
	})
}
