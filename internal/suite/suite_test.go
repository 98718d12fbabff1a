package suite_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"

	"github.com/mlskit/mlskit/internal/conformance/vectortest"
	"github.com/mlskit/mlskit/internal/suite"
)

// seeded returns a deterministic byte stream (not for real keys).
func seeded(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i%len(c)] ^= 0x01
	return c
}

func forEach(t *testing.T, f func(t *testing.T, s *suite.Suite)) {
	for _, id := range suite.Supported() {
		s, err := suite.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(id.String(), func(t *testing.T) { f(t, s) })
	}
}

func TestLookup(t *testing.T) {
	ids := suite.Supported()
	if len(ids) != 15 {
		t.Errorf("Supported() has %d suites, want 7 RFC 9420 + 8 post-quantum", len(ids))
	}
	for _, id := range ids {
		s, err := suite.Lookup(id)
		if err != nil || s.ID() != id {
			t.Errorf("Lookup(%v) = %v, %v", id, s, err)
		}
		if s2, _ := suite.Lookup(id); s2 != s {
			t.Errorf("Lookup(%v) does not return a shared instance", id)
		}
	}
	for _, id := range []suite.ID{0, 0x0008, 0xF000, 0xF009, 0xFFFF} {
		if _, err := suite.Lookup(id); !errors.Is(err, suite.ErrUnsupported) {
			t.Errorf("Lookup(%#x) error = %v, want ErrUnsupported", uint16(id), err)
		}
	}
}

func TestSizes(t *testing.T) {
	want := map[suite.ID][3]int{ // Nh, Nk, Nn (RFC 9420, Section 17.1; RFC 9180, Section 7.3)
		1: {32, 16, 12}, 2: {32, 16, 12}, 3: {32, 32, 12}, 4: {64, 32, 12},
		5: {64, 32, 12}, 6: {64, 32, 12}, 7: {48, 32, 12},
		suite.MLS128MLKEM768X25519AES128GCMSHA256Ed25519: {32, 16, 12},
		suite.MLS192MLKEM1024AES256GCMSHA384P384:         {48, 32, 12},
	}
	for id, w := range want {
		s, err := suite.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		got := [3]int{s.HashSize(), s.KeySize(), s.NonceSize()}
		if got != w {
			t.Errorf("%v: Nh, Nk, Nn = %v, want %v", id, got, w)
		}
		if n := len(s.Hash([]byte("x"))); n != w[0] {
			t.Errorf("%v: len(Hash) = %d", id, n)
		}
		if n := len(s.Extract(nil, []byte("x"))); n != w[0] {
			t.Errorf("%v: len(Extract) = %d", id, n)
		}
		if n := len(s.DeriveSecret([]byte("x"), "y")); n != w[0] {
			t.Errorf("%v: len(DeriveSecret) = %d", id, n)
		}
	}
}

// TestHKDF checks Extract and Expand against RFC 5869, Appendix A.1 (SHA-256)
// and that ExpandWithLabel of a long output chains blocks correctly.
func TestHKDF(t *testing.T) {
	s, _ := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	salt := unhex(t, "000102030405060708090a0b0c")
	info := unhex(t, "f0f1f2f3f4f5f6f7f8f9")
	prk := s.Extract(salt, ikm)
	if want := unhex(t, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"); !bytes.Equal(prk, want) {
		t.Errorf("Extract = %x, want %x", prk, want)
	}
	okm := s.Expand(prk, info, 42)
	if want := unhex(t, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"); !bytes.Equal(okm, want) {
		t.Errorf("Expand = %x, want %x", okm, want)
	}
	// A multi-block output is HKDF-Expand of the KDFLabel (RFC 9420,
	// Section 8): uint16 length, "MLS 1.0 l" and "c" as opaque<V>.
	long := s.ExpandWithLabel(prk, "l", []byte("c"), 100)
	kdfLabel := append([]byte{0, 100, 9}, "MLS 1.0 l"...)
	kdfLabel = append(kdfLabel, 1, 'c')
	if want := s.Expand(prk, kdfLabel, 100); !bytes.Equal(long, want) {
		t.Errorf("ExpandWithLabel = %x, want %x", long, want)
	}
	// The length is part of KDFLabel, so a 33-byte output is not a prefix.
	if bytes.Equal(s.ExpandWithLabel(prk, "l", []byte("c"), 33), long[:33]) {
		t.Error("ExpandWithLabel ignores the length in KDFLabel")
	}
}

func TestMAC(t *testing.T) {
	forEach(t, func(t *testing.T, s *suite.Suite) {
		key, data := []byte("key"), []byte("data")
		tag := s.MAC(key, data)
		if len(tag) != s.HashSize() {
			t.Fatalf("len(MAC) = %d", len(tag))
		}
		if !s.VerifyMAC(key, data, tag) {
			t.Error("VerifyMAC rejects a good tag")
		}
		for _, bad := range [][]byte{flip(tag, 0), flip(tag, len(tag)-1), tag[:len(tag)-1], nil} {
			if s.VerifyMAC(key, data, bad) {
				t.Errorf("VerifyMAC accepts %x", bad)
			}
		}
		if s.VerifyMAC([]byte("kez"), data, tag) || s.VerifyMAC(key, []byte("dat"), tag) {
			t.Error("VerifyMAC accepts a tag for another key or data")
		}
	})
}

func TestAEAD(t *testing.T) {
	forEach(t, func(t *testing.T, s *suite.Suite) {
		r := seeded(1)
		key := make([]byte, s.KeySize())
		nonce := make([]byte, s.NonceSize())
		io.ReadFull(r, key)
		io.ReadFull(r, nonce)
		aad, pt := []byte("aad"), []byte("attack at dawn")
		ct, err := s.Seal(key, nonce, aad, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(pt)+16 {
			t.Errorf("ciphertext length %d, want %d", len(ct), len(pt)+16)
		}
		got, err := s.Open(key, nonce, aad, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, %v", got, err)
		}
		for name, c := range map[string]func() ([]byte, error){
			"ciphertext": func() ([]byte, error) { return s.Open(key, nonce, aad, flip(ct, 0)) },
			"tag":        func() ([]byte, error) { return s.Open(key, nonce, aad, flip(ct, len(ct)-1)) },
			"aad":        func() ([]byte, error) { return s.Open(key, nonce, []byte("aae"), ct) },
			"nonce":      func() ([]byte, error) { return s.Open(key, flip(nonce, 3), aad, ct) },
			"key":        func() ([]byte, error) { return s.Open(flip(key, 5), nonce, aad, ct) },
			"truncated":  func() ([]byte, error) { return s.Open(key, nonce, aad, ct[:10]) },
			"empty":      func() ([]byte, error) { return s.Open(key, nonce, aad, nil) },
		} {
			if _, err := c(); !errors.Is(err, suite.ErrDecrypt) {
				t.Errorf("tampered %s: error %v, want ErrDecrypt", name, err)
			}
		}
		for _, k := range [][]byte{nil, key[:len(key)-1], append(bytes.Clone(key), 0)} {
			if _, err := s.Seal(k, nonce, aad, pt); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("Seal with %d-byte key: %v, want ErrInvalidKey", len(k), err)
			}
			if _, err := s.Open(k, nonce, aad, ct); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("Open with %d-byte key: %v, want ErrInvalidKey", len(k), err)
			}
		}
		if _, err := s.Seal(key, nonce[:8], aad, pt); err == nil {
			t.Error("Seal accepts a short nonce")
		}
	})
}

func TestSignatures(t *testing.T) {
	forEach(t, func(t *testing.T, s *suite.Suite) {
		priv, pub, err := s.GenerateSignatureKey(seeded(2))
		if err != nil {
			t.Fatal(err)
		}
		priv2, pub2, _ := s.GenerateSignatureKey(seeded(2))
		if !bytes.Equal(priv, priv2) || !bytes.Equal(pub, pub2) {
			t.Error("GenerateSignatureKey is not deterministic given its reader")
		}
		if p, err := s.SignaturePublicKey(priv); err != nil || !bytes.Equal(p, pub) {
			t.Errorf("SignaturePublicKey = %x, %v; want %x", p, err, pub)
		}
		content := []byte("content")
		sig, err := s.SignWithLabel(priv, "Label", content)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyWithLabel(pub, "Label", content, sig); err != nil {
			t.Fatalf("own signature: %v", err)
		}
		signer, err := s.NewSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(signer.PublicKey(), pub) {
			t.Error("Signer.PublicKey differs")
		}
		sig2, err := signer.SignWithLabel("Label", content)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyWithLabel(pub, "Label", content, sig2); err != nil {
			t.Errorf("Signer signature: %v", err)
		}
		_, otherPub, _ := s.GenerateSignatureKey(seeded(3))
		for name, f := range map[string]func() error{
			"signature": func() error { return s.VerifyWithLabel(pub, "Label", content, flip(sig, len(sig)/2)) },
			"sig end":   func() error { return s.VerifyWithLabel(pub, "Label", content, flip(sig, len(sig)-1)) },
			"truncated": func() error { return s.VerifyWithLabel(pub, "Label", content, sig[:len(sig)-1]) },
			"empty":     func() error { return s.VerifyWithLabel(pub, "Label", content, nil) },
			"content":   func() error { return s.VerifyWithLabel(pub, "Label", flip(content, 0), sig) },
			"label":     func() error { return s.VerifyWithLabel(pub, "Labem", content, sig) },
			"other key": func() error { return s.VerifyWithLabel(otherPub, "Label", content, sig) },
		} {
			if err := f(); !errors.Is(err, suite.ErrInvalidSignature) {
				t.Errorf("tampered %s: %v, want ErrInvalidSignature", name, err)
			}
		}
	})
}

func TestHPKE(t *testing.T) {
	forEach(t, func(t *testing.T, s *suite.Suite) {
		priv, pub, err := s.GenerateKEMKey(seeded(4))
		if err != nil {
			t.Fatal(err)
		}
		priv2, pub2, _ := s.GenerateKEMKey(seeded(4))
		if !bytes.Equal(priv, priv2) || !bytes.Equal(pub, pub2) {
			t.Error("GenerateKEMKey is not deterministic given its reader")
		}
		if p, err := s.KEMPublicKey(priv); err != nil || !bytes.Equal(p, pub) {
			t.Errorf("KEMPublicKey = %x, %v; want %x", p, err, pub)
		}
		if err := s.ValidateKEMPublicKey(pub); err != nil {
			t.Errorf("ValidateKEMPublicKey: %v", err)
		}
		if dp, dpub, err := s.DeriveKeyPair([]byte("ikm")); err != nil {
			t.Error(err)
		} else if p, _ := s.KEMPublicKey(dp); !bytes.Equal(p, dpub) {
			t.Error("DeriveKeyPair: public key does not match private key")
		}

		ctx, pt := []byte("context"), []byte("group secrets")
		kemOut, ct, err := s.EncryptWithLabel(pub, "Label", ctx, pt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.DecryptWithLabel(priv, "Label", ctx, kemOut, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("DecryptWithLabel = %q, %v", got, err)
		}
		otherPriv, _, _ := s.GenerateKEMKey(seeded(5))
		for name, f := range map[string]func() ([]byte, error){
			"ciphertext": func() ([]byte, error) { return s.DecryptWithLabel(priv, "Label", ctx, kemOut, flip(ct, 0)) },
			"tag":        func() ([]byte, error) { return s.DecryptWithLabel(priv, "Label", ctx, kemOut, flip(ct, len(ct)-1)) },
			"kem output": func() ([]byte, error) { return s.DecryptWithLabel(priv, "Label", ctx, flip(kemOut, 1), ct) },
			"short kem":  func() ([]byte, error) { return s.DecryptWithLabel(priv, "Label", ctx, kemOut[1:], ct) },
			"label":      func() ([]byte, error) { return s.DecryptWithLabel(priv, "Labem", ctx, kemOut, ct) },
			"context":    func() ([]byte, error) { return s.DecryptWithLabel(priv, "Label", nil, kemOut, ct) },
			"other key":  func() ([]byte, error) { return s.DecryptWithLabel(otherPriv, "Label", ctx, kemOut, ct) },
		} {
			if _, err := f(); !errors.Is(err, suite.ErrDecrypt) {
				t.Errorf("tampered %s: %v, want ErrDecrypt", name, err)
			}
		}

		info, aad := []byte("info"), []byte("aad")
		kemOut, ct, err = s.HPKESeal(pub, info, aad, pt)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.HPKEOpen(priv, info, aad, kemOut, ct); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("HPKEOpen = %q, %v", got, err)
		}
		if _, err := s.HPKEOpen(priv, info, []byte("aae"), kemOut, ct); !errors.Is(err, suite.ErrDecrypt) {
			t.Errorf("HPKEOpen with other aad: %v, want ErrDecrypt", err)
		}
		if _, err := s.HPKEOpen(priv, []byte("infp"), aad, kemOut, ct); !errors.Is(err, suite.ErrDecrypt) {
			t.Errorf("HPKEOpen with other info: %v, want ErrDecrypt", err)
		}
		// Encryption is randomized.
		kemOut2, ct2, _ := s.HPKESeal(pub, info, aad, pt)
		if bytes.Equal(kemOut, kemOut2) || bytes.Equal(ct, ct2) {
			t.Error("two encryptions are equal")
		}
	})
}

// TestBadKeys: malformed key bytes give ErrInvalidKey, never a panic.
func TestBadKeys(t *testing.T) {
	forEach(t, func(t *testing.T, s *suite.Suite) {
		sigPriv, sigPub, _ := s.GenerateSignatureKey(seeded(6))
		kemPriv, kemPub, _ := s.GenerateKEMKey(seeded(7))
		// NIST-curve scalars one byte short are the same integer with a
		// leading zero dropped, and accepted (TestShortScalars).
		name := s.ID().String()
		nist := strings.HasSuffix(name, "_P256") || strings.HasSuffix(name, "_P384") || strings.HasSuffix(name, "_P521")
		nistKEM := s.ID() == 2 || s.ID() == 5 || s.ID() == 7
		bad := func(good []byte, scalar bool) [][]byte {
			b := [][]byte{nil, {}, append(bytes.Clone(good), 0), bytes.Repeat([]byte{0xff}, 3*len(good))}
			if !scalar {
				b = append(b, good[:len(good)-1])
			}
			return b
		}
		for _, k := range bad(sigPriv, nist) {
			if _, err := s.SignaturePublicKey(k); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("SignaturePublicKey(%d bytes): %v", len(k), err)
			}
			if _, err := s.NewSigner(k); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("NewSigner(%d bytes): %v", len(k), err)
			}
			if _, err := s.SignWithLabel(k, "L", nil); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("SignWithLabel(%d bytes): %v", len(k), err)
			}
		}
		sig, _ := s.SignWithLabel(sigPriv, "L", nil)
		for _, k := range bad(sigPub, false) {
			if err := s.VerifyWithLabel(k, "L", nil, sig); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("VerifyWithLabel(%d-byte pub): %v", len(k), err)
			}
		}
		for _, k := range bad(kemPriv, nistKEM) {
			if _, err := s.KEMPublicKey(k); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("KEMPublicKey(%d bytes): %v", len(k), err)
			}
			if _, err := s.DecryptWithLabel(k, "L", nil, make([]byte, 100), make([]byte, 100)); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("DecryptWithLabel(%d-byte priv): %v", len(k), err)
			}
		}
		for _, k := range bad(kemPub, false) {
			if err := s.ValidateKEMPublicKey(k); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("ValidateKEMPublicKey(%d bytes): %v", len(k), err)
			}
			if _, _, err := s.EncryptWithLabel(k, "L", nil, nil); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("EncryptWithLabel(%d-byte pub): %v", len(k), err)
			}
		}
		// Keys of the right length that are not valid.
		if s.ID() == 2 || s.ID() == 5 || s.ID() == 7 {
			if _, err := s.SignaturePublicKey(bytes.Repeat([]byte{0xff}, len(sigPriv))); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("ECDSA scalar above the order: %v", err)
			}
			if _, err := s.SignaturePublicKey(make([]byte, len(sigPriv))); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("ECDSA zero scalar: %v", err)
			}
			if err := s.ValidateKEMPublicKey(flip(kemPub, len(kemPub)-1)); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("point off the curve: %v", err)
			}
			if err := s.VerifyWithLabel(flip(sigPub, len(sigPub)-1), "L", nil, sig); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("signature key off the curve: %v", err)
			}
		}
		// A low-order X25519/X448 point: the DH output would be zero
		// (RFC 9180, Section 7.1.4).
		if s.ID() == 1 || s.ID() == 3 || s.ID() == 4 || s.ID() == 6 {
			zero := make([]byte, len(kemPub))
			if _, _, err := s.EncryptWithLabel(zero, "L", nil, nil); !errors.Is(err, suite.ErrInvalidKey) {
				t.Errorf("EncryptWithLabel to a low-order point: %v", err)
			}
			kemOut, ct, _ := s.EncryptWithLabel(kemPub, "L", nil, nil)
			_ = kemOut
			if _, err := s.DecryptWithLabel(kemPriv, "L", nil, zero, ct); !errors.Is(err, suite.ErrDecrypt) {
				t.Errorf("DecryptWithLabel of a low-order KEM output: %v", err)
			}
		}
	})
}

// TestErrorsHoldNoKeys: no error text contains key bytes.
func TestErrorsHoldNoKeys(t *testing.T) {
	forEach(t, func(t *testing.T, s *suite.Suite) {
		priv, _, _ := s.GenerateKEMKey(seeded(8))
		sigPriv, _, _ := s.GenerateSignatureKey(seeded(9))
		var errs []error
		_, err := s.DecryptWithLabel(priv, "L", nil, make([]byte, 3), nil)
		errs = append(errs, err)
		_, err = s.KEMPublicKey(append(bytes.Clone(priv), 1))
		errs = append(errs, err)
		_, err = s.SignWithLabel(append(bytes.Clone(sigPriv), 1), "L", nil)
		errs = append(errs, err)
		for _, err := range errs {
			if err == nil {
				t.Fatal("expected an error")
			}
			msg := err.Error()
			for _, k := range [][]byte{priv, sigPriv, priv[1:], sigPriv[1:]} { // any 8 bytes of them
				if strings.Contains(msg, hex.EncodeToString(k[:8])) {
					t.Errorf("error %q contains key bytes", msg)
				}
			}
		}
	})
}

// TestGlobalRandom: with testing/cryptotest every suite's encryption repeats,
// including the X448 HPKE implemented in this package.
func TestGlobalRandom(t *testing.T) {
	forEach(t, func(t *testing.T, s *suite.Suite) {
		_, pub, _ := s.GenerateKEMKey(seeded(10))
		cryptotest.SetGlobalRandom(t, 42)
		k1, c1, err := s.EncryptWithLabel(pub, "L", nil, []byte("p"))
		if err != nil {
			t.Fatal(err)
		}
		cryptotest.SetGlobalRandom(t, 42)
		k2, c2, _ := s.EncryptWithLabel(pub, "L", nil, []byte("p"))
		if !bytes.Equal(k1, k2) || !bytes.Equal(c1, c2) {
			t.Error("EncryptWithLabel does not repeat under cryptotest.SetGlobalRandom")
		}
	})
}

// TestDeriveKeyPairVectors checks DeriveKeyPair against the external_pub of
// the key-schedule vectors (RFC 9420, Section 8: external_pub is the public
// key of KEM.DeriveKeyPair(external_secret)) for suites 1-7. crypto-basics has
// no DeriveKeyPair case; this is the only known answer the official vectors
// give for it.
func TestDeriveKeyPairVectors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(vectortest.Dir(t), "key-schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tcs []struct {
		Suite  uint16 `json:"cipher_suite"`
		Epochs []struct {
			ExternalSecret string `json:"external_secret"`
			ExternalPub    string `json:"external_pub"`
		} `json:"epochs"`
	}
	if err := json.Unmarshal(data, &tcs); err != nil {
		t.Fatal(err)
	}
	seen := map[uint16]bool{}
	for _, tc := range tcs {
		s, err := suite.Lookup(suite.ID(tc.Suite))
		if err != nil {
			t.Errorf("suite %d: %v", tc.Suite, err)
			continue
		}
		for i, e := range tc.Epochs {
			priv, pub, err := s.DeriveKeyPair(unhex(t, e.ExternalSecret))
			if err != nil {
				t.Fatalf("suite %d epoch %d: %v", tc.Suite, i, err)
			}
			if want := unhex(t, e.ExternalPub); !bytes.Equal(pub, want) {
				t.Errorf("suite %d epoch %d: pub %x, want %x", tc.Suite, i, pub, want)
			}
			if p, err := s.KEMPublicKey(priv); err != nil || !bytes.Equal(p, pub) {
				t.Errorf("suite %d epoch %d: KEMPublicKey(priv) = %x, %v", tc.Suite, i, p, err)
			}
			seen[tc.Suite] = true
		}
	}
	if len(seen) != 7 {
		t.Errorf("checked suites %v, want all 7", seen)
	}
}

// TestX25519PrivateKeyUnclamped: DeriveKeyPair keeps the X25519 scalar as
// derived (RFC 9180, Section 7.1.3), as the interop vectors write it, and
// accepts clamped and unclamped forms alike.
func TestX25519PrivateKeyUnclamped(t *testing.T) {
	s, _ := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	unclamped := 0
	for i := range 16 {
		priv, pub, _ := s.DeriveKeyPair([]byte{byte(i)})
		if priv[0]&7 != 0 || priv[31]&0x80 != 0 || priv[31]&0x40 == 0 {
			unclamped++
		}
		c := bytes.Clone(priv)
		c[0] &= 248
		c[31] = c[31]&127 | 64
		if p, _ := s.KEMPublicKey(c); !bytes.Equal(p, pub) {
			t.Error("clamped form gives another public key")
		}
	}
	if unclamped == 0 {
		t.Error("DeriveKeyPair clamps X25519 private keys; the vectors keep them unclamped")
	}
}

// TestConcurrent: a Suite is shared; run the hot paths from many goroutines
// (meaningful under -race).
func TestConcurrent(t *testing.T) {
	s, _ := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	want := s.DeriveTreeSecret([]byte("secret"), "key", 7, 16)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got := s.DeriveTreeSecret([]byte("secret"), "key", 7, 16); !bytes.Equal(got, want) {
					t.Error("concurrent DeriveTreeSecret differs")
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestHMACMatchesStdlib: the pooled HMAC/HKDF agrees with crypto/hmac and
// crypto/hkdf for keys shorter than, equal to and longer than the block,
// multi-block outputs, and concurrent use.
func TestHMACMatchesStdlib(t *testing.T) {
	forEach(t, func(t *testing.T, s *suite.Suite) {
		var newHash func() hash.Hash
		switch s.HashSize() {
		case 32:
			newHash = sha256.New
		case 48:
			newHash = sha512.New384
		case 64:
			newHash = sha512.New
		}
		r := seeded(11)
		for _, n := range []int{0, 1, 31, 32, 64, 65, 127, 128, 129, 300} {
			key := make([]byte, n)
			data := make([]byte, n*3+1)
			io.ReadFull(r, key)
			io.ReadFull(r, data)
			m := hmac.New(newHash, key)
			m.Write(data)
			if got, want := s.MAC(key, data), m.Sum(nil); !bytes.Equal(got, want) {
				t.Errorf("MAC with %d-byte key = %x, want %x", n, got, want)
			}
			prk, _ := hkdf.Extract(newHash, data, key)
			if got := s.Extract(key, data); !bytes.Equal(got, prk) {
				t.Errorf("Extract with %d-byte salt = %x, want %x", n, got, prk)
			}
			for _, l := range []int{1, s.HashSize(), 2*s.HashSize() + 5, 255 * s.HashSize()} {
				want, _ := hkdf.Expand(newHash, prk, string(data), l)
				if got := s.Expand(prk, data, l); !bytes.Equal(got, want) {
					t.Errorf("Expand(%d) differs from crypto/hkdf", l)
				}
			}
		}
		if got, want := s.Extract(nil, []byte("x")), s.Extract(make([]byte, s.HashSize()), []byte("x")); !bytes.Equal(got, want) {
			t.Error("Extract with empty salt differs from Nh zero bytes")
		}
	})
}

// TestShortScalars: a NIST-curve private key written without its leading
// zero octet (as the official P-521 vectors do) is the same key.
func TestShortScalars(t *testing.T) {
	for _, id := range []suite.ID{2, 5, 7, suite.MLS192MLKEM1024P384AES256GCMSHA384P384} {
		s, _ := suite.Lookup(id)
		t.Run(id.String(), func(t *testing.T) {
			// Signature keys: find one with a leading zero octet.
			found := false
			for i := range 4096 {
				priv, pub, err := s.GenerateSignatureKey(seeded(uint64(i)))
				if err != nil {
					t.Fatal(err)
				}
				if priv[0] != 0 {
					continue
				}
				found = true
				if p, err := s.SignaturePublicKey(priv[1:]); err != nil || !bytes.Equal(p, pub) {
					t.Errorf("short signature key: %x, %v", p, err)
				}
				sig, err := s.SignWithLabel(priv[1:], "L", nil)
				if err != nil || s.VerifyWithLabel(pub, "L", nil, sig) != nil {
					t.Errorf("signing with the short key: %v", err)
				}
				break
			}
			if !found {
				t.Fatal("no signature key with a leading zero")
			}
			if id > 7 {
				return // ML-KEM keys are seeds, not scalars
			}
			found = false
			for i := range 4096 {
				priv, pub, err := s.DeriveKeyPair([]byte{byte(i), byte(i >> 8)})
				if err != nil {
					t.Fatal(err)
				}
				if priv[0] != 0 {
					continue
				}
				found = true
				if p, err := s.KEMPublicKey(priv[1:]); err != nil || !bytes.Equal(p, pub) {
					t.Errorf("short KEM key: %x, %v", p, err)
				}
				kemOut, ct, _ := s.EncryptWithLabel(pub, "L", nil, []byte("p"))
				if pt, err := s.DecryptWithLabel(priv[1:], "L", nil, kemOut, ct); err != nil || string(pt) != "p" {
					t.Errorf("decrypting with the short key: %q, %v", pt, err)
				}
				break
			}
			if !found {
				t.Fatal("no KEM key with a leading zero")
			}
		})
	}
}
