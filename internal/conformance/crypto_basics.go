package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/suite"
)

func init() { register("crypto-basics.json", checkCryptoBasics) }

// checkCryptoBasics checks the Section 5 primitives of RFC 9420 for each
// suite: RefHash (5.2), ExpandWithLabel and DeriveSecret (8),
// DeriveTreeSecret (9), SignWithLabel/VerifyWithLabel (5.1.2) and
// EncryptWithLabel/DecryptWithLabel (5.1.3). Every sub-check runs; a case
// fails with all the sub-checks that failed.
func checkCryptoBasics(data []byte) ([]Case, error) {
	var tcs []struct {
		Suite   uint16 `json:"cipher_suite"`
		RefHash struct {
			Label string `json:"label"`
			Value Hex    `json:"value"`
			Out   Hex    `json:"out"`
		} `json:"ref_hash"`
		ExpandWithLabel struct {
			Secret  Hex    `json:"secret"`
			Label   string `json:"label"`
			Context Hex    `json:"context"`
			Length  Num    `json:"length"`
			Out     Hex    `json:"out"`
		} `json:"expand_with_label"`
		DeriveSecret struct {
			Secret Hex    `json:"secret"`
			Label  string `json:"label"`
			Out    Hex    `json:"out"`
		} `json:"derive_secret"`
		DeriveTreeSecret struct {
			Secret     Hex    `json:"secret"`
			Label      string `json:"label"`
			Generation Num    `json:"generation"`
			Length     Num    `json:"length"`
			Out        Hex    `json:"out"`
		} `json:"derive_tree_secret"`
		SignWithLabel struct {
			Priv      Hex    `json:"priv"`
			Pub       Hex    `json:"pub"`
			Content   Hex    `json:"content"`
			Label     string `json:"label"`
			Signature Hex    `json:"signature"`
		} `json:"sign_with_label"`
		EncryptWithLabel struct {
			Priv       Hex    `json:"priv"`
			Pub        Hex    `json:"pub"`
			Label      string `json:"label"`
			Context    Hex    `json:"context"`
			Plaintext  Hex    `json:"plaintext"`
			KEMOutput  Hex    `json:"kem_output"`
			Ciphertext Hex    `json:"ciphertext"`
		} `json:"encrypt_with_label"`
	}
	if err := json.Unmarshal(data, &tcs); err != nil {
		return nil, err
	}
	var out []Case
	for i, tc := range tcs {
		c := Case{Name: caseName(i, tc.Suite)}
		s, err := suite.Lookup(suite.ID(tc.Suite))
		if err != nil {
			c.Err = err
			out = append(out, c)
			continue
		}
		var errs []error
		fail := func(err error) { errs = append(errs, err) }

		// RFC 9420, Section 5.2.
		if got := s.RefHash(tc.RefHash.Label, tc.RefHash.Value); !bytes.Equal(got, tc.RefHash.Out) {
			fail(mismatch("ref_hash", got, tc.RefHash.Out))
		}

		// RFC 9420, Section 8.
		e := tc.ExpandWithLabel
		if e.Length > 0xffff || int(e.Length) > 255*s.HashSize() {
			fail(fmt.Errorf("expand_with_label: length %d out of range", e.Length))
		} else if got := s.ExpandWithLabel(e.Secret, e.Label, e.Context, int(e.Length)); !bytes.Equal(got, e.Out) {
			fail(mismatch("expand_with_label", got, e.Out))
		}
		d := tc.DeriveSecret
		if got := s.DeriveSecret(d.Secret, d.Label); !bytes.Equal(got, d.Out) {
			fail(mismatch("derive_secret", got, d.Out))
		}

		// RFC 9420, Section 9.
		t := tc.DeriveTreeSecret
		if t.Length > 0xffff || int(t.Length) > 255*s.HashSize() || t.Generation > 0xffffffff {
			fail(fmt.Errorf("derive_tree_secret: length or generation out of range"))
		} else if got := s.DeriveTreeSecret(t.Secret, t.Label, uint32(t.Generation), int(t.Length)); !bytes.Equal(got, t.Out) {
			fail(mismatch("derive_tree_secret", got, t.Out))
		}

		// RFC 9420, Section 5.1.2: the given signature verifies, and one of
		// ours verifies; the private key yields the given public key.
		g := tc.SignWithLabel
		if err := s.VerifyWithLabel(g.Pub, g.Label, g.Content, g.Signature); err != nil {
			fail(fmt.Errorf("sign_with_label: given signature: %w", err))
		}
		if pub, err := s.SignaturePublicKey(g.Priv); err != nil {
			fail(fmt.Errorf("sign_with_label: public key from priv: %w", err))
		} else if !bytes.Equal(pub, g.Pub) {
			fail(mismatch("sign_with_label: public key from priv", pub, g.Pub))
		}
		if sig, err := s.SignWithLabel(g.Priv, g.Label, g.Content); err != nil {
			fail(fmt.Errorf("sign_with_label: signing: %w", err))
		} else if err := s.VerifyWithLabel(g.Pub, g.Label, g.Content, sig); err != nil {
			fail(fmt.Errorf("sign_with_label: own signature: %w", err))
		}

		// RFC 9420, Section 5.1.3: the given ciphertext decrypts, and one of
		// ours round-trips; the private key yields the given public key.
		h := tc.EncryptWithLabel
		if pt, err := s.DecryptWithLabel(h.Priv, h.Label, h.Context, h.KEMOutput, h.Ciphertext); err != nil {
			fail(fmt.Errorf("encrypt_with_label: given ciphertext: %w", err))
		} else if !bytes.Equal(pt, h.Plaintext) {
			fail(mismatch("encrypt_with_label: given ciphertext", pt, h.Plaintext))
		}
		if pub, err := s.KEMPublicKey(h.Priv); err != nil {
			fail(fmt.Errorf("encrypt_with_label: public key from priv: %w", err))
		} else if !bytes.Equal(pub, h.Pub) {
			fail(mismatch("encrypt_with_label: public key from priv", pub, h.Pub))
		}
		if kemOut, ct, err := s.EncryptWithLabel(h.Pub, h.Label, h.Context, h.Plaintext); err != nil {
			fail(fmt.Errorf("encrypt_with_label: encrypting: %w", err))
		} else if pt, err := s.DecryptWithLabel(h.Priv, h.Label, h.Context, kemOut, ct); err != nil {
			fail(fmt.Errorf("encrypt_with_label: own ciphertext: %w", err))
		} else if !bytes.Equal(pt, h.Plaintext) {
			fail(mismatch("encrypt_with_label: own ciphertext", pt, h.Plaintext))
		}

		c.Err = errors.Join(errs...)
		out = append(out, c)
	}
	return out, nil
}
