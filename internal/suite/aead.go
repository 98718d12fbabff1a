package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"

	"golang.org/x/crypto/chacha20poly1305"
)

// aeadAlg is one of the AEADs of RFC 9420, Section 17.1.
type aeadAlg uint8

const (
	aesGCM128 aeadAlg = iota + 1
	aesGCM256
	chacha20Poly1305
)

func (a aeadAlg) keySize() int {
	switch a {
	case aesGCM128:
		return 16
	case aesGCM256, chacha20Poly1305:
		return 32
	}
	panic("suite: bad AEAD")
}

// nonceSize is Nn; it is 12 for all three AEADs.
func (a aeadAlg) nonceSize() int { return 12 }

// new instantiates the AEAD with key, which must be keySize bytes.
func (a aeadAlg) new(key []byte) (cipher.AEAD, error) {
	if len(key) != a.keySize() {
		return nil, ErrInvalidKey
	}
	switch a {
	case aesGCM128, aesGCM256:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, ErrInvalidKey
		}
		return cipher.NewGCM(b)
	case chacha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, ErrUnsupported
}

var errNonceSize = errors.New("mls: AEAD nonce has the wrong length")

// Seal encrypts and authenticates plaintext and authenticates aad with the
// suite's AEAD (RFC 9420, Section 5.1). The key must be Nk bytes (else
// ErrInvalidKey) and the nonce Nn bytes. The result is ciphertext||tag.
func (s *Suite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	return s.SealAppend(nil, key, nonce, aad, plaintext)
}

// SealAppend is Seal that appends ciphertext||tag to dst (in place when
// dst has the room): for a large plaintext whose ciphertext belongs inside
// a larger encoding.
func (s *Suite) SealAppend(dst, key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := s.aead.new(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, errNonceSize
	}
	return a.Seal(dst, nonce, plaintext, aad), nil
}

// OpenInPlace is Open writing the plaintext over ciphertext's own bytes
// (no allocation): afterwards ciphertext holds the plaintext, or zeros if it
// did not decrypt. For a received message whose bytes the caller owns.
func (s *Suite) OpenInPlace(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	return s.openTo(ciphertext[:0], key, nonce, aad, ciphertext)
}

// Open reverses Seal. It returns ErrDecrypt if the ciphertext or aad was
// altered or the key is wrong.
func (s *Suite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	return s.openTo(nil, key, nonce, aad, ciphertext)
}

func (s *Suite) openTo(dst, key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := s.aead.new(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, errNonceSize
	}
	pt, err := a.Open(dst, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
