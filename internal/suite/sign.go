package suite

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/sign/ed448"

	"github.com/mlskit/mlskit/internal/codec"
)

// sigAlg is a signature scheme of RFC 9420, Section 17.1 (the TLS 1.3
// SignatureScheme names).
type sigAlg uint8

const (
	ed25519Sig sigAlg = iota + 1 // ed25519
	ed448Sig                     // ed448
	ecdsaP256                    // ecdsa_secp256r1_sha256
	ecdsaP384                    // ecdsa_secp384r1_sha384
	ecdsaP521                    // ecdsa_secp521r1_sha512
)

// curve returns the ECDSA curve, its scalar length and its hash. The hash is
// the signature scheme's, not the suite's: the post-quantum suites pair
// ecdsa_secp256r1_sha256 with SHA-384 as the suite hash.
func (a sigAlg) curve() (elliptic.Curve, int, crypto.Hash) {
	switch a {
	case ecdsaP256:
		return elliptic.P256(), 32, crypto.SHA256
	case ecdsaP384:
		return elliptic.P384(), 48, crypto.SHA384
	case ecdsaP521:
		return elliptic.P521(), 66, crypto.SHA512
	}
	return nil, 0, 0
}

// Signer signs with one private key parsed once. Implementations are safe for
// concurrent use.
type Signer interface {
	// PublicKey returns the signature public key in the suite's format.
	PublicKey() []byte
	// SignWithLabel signs SignContent{"MLS 1.0 "+label, content} (RFC 9420,
	// Section 5.1.2).
	SignWithLabel(label string, content []byte) ([]byte, error)
}

// ContentSigner is a Signer that also signs a SignContent the caller has
// already laid out (AppendSignContentHeader, then the content): a large
// content (a GroupInfo with the ratchet tree) is then not copied again.
// The signers of this package implement it.
type ContentSigner interface {
	Signer
	SignSignContent(signContent []byte) ([]byte, error)
}

// GenerateSignatureKey makes a signature key pair from the bytes of rand: an
// Ed25519/Ed448 seed, or for ECDSA a scalar by rejection sampling. The same
// stream gives the same key.
func (s *Suite) GenerateSignatureKey(rand io.Reader) (priv, pub []byte, err error) {
	switch s.sig {
	case ed25519Sig:
		priv = make([]byte, ed25519.SeedSize)
	case ed448Sig:
		priv = make([]byte, ed448.SeedSize)
	default:
		c, n, _ := s.sig.curve()
		priv = make([]byte, n)
		for range 64 {
			if _, err := io.ReadFull(rand, priv); err != nil {
				return nil, nil, fmt.Errorf("mls: generating signature key: %w", err)
			}
			if c == elliptic.P521() {
				priv[0] &= 0x01
			}
			k, err := ecdsa.ParseRawPrivateKey(c, priv)
			if err != nil {
				continue // zero or not below the group order: draw again
			}
			pub, err = k.PublicKey.Bytes()
			if err != nil {
				return nil, nil, err
			}
			return priv, pub, nil
		}
		return nil, nil, errors.New("mls: generating signature key: random source gives no valid scalar")
	}
	if _, err := io.ReadFull(rand, priv); err != nil {
		return nil, nil, fmt.Errorf("mls: generating signature key: %w", err)
	}
	pub, err = s.SignaturePublicKey(priv)
	return priv, pub, err
}

// SignaturePublicKey returns the public key of a signature private key.
func (s *Suite) SignaturePublicKey(priv []byte) ([]byte, error) {
	sg, err := s.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	return sg.PublicKey(), nil
}

// NewSigner parses priv once for repeated signing. It returns ErrInvalidKey
// if priv is not a valid private key of the suite's signature scheme.
func (s *Suite) NewSigner(priv []byte) (Signer, error) {
	switch s.sig {
	case ed25519Sig:
		if len(priv) != ed25519.SeedSize {
			return nil, ErrInvalidKey
		}
		k := ed25519.NewKeyFromSeed(priv)
		return &ed25519Signer{k: k, pub: k.Public().(ed25519.PublicKey)}, nil
	case ed448Sig:
		if len(priv) != ed448.SeedSize {
			return nil, ErrInvalidKey
		}
		k := ed448.NewKeyFromSeed(priv)
		return &ed448Signer{k: k, pub: k.Public().(ed448.PublicKey)}, nil
	default:
		c, n, h := s.sig.curve()
		if c == nil {
			return nil, ErrUnsupported
		}
		// Scalars may come without their leading zero octets (the
		// official P-521 vectors); see leftPad. Treated alike on every
		// NIST curve, as HPKE private keys are (stdKEM.privateKey).
		var ok bool
		if priv, ok = leftPad(priv, n); !ok {
			return nil, ErrInvalidKey
		}
		if len(priv) != n {
			return nil, ErrInvalidKey
		}
		k, err := ecdsa.ParseRawPrivateKey(c, priv)
		if err != nil {
			return nil, ErrInvalidKey
		}
		pub, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, ErrInvalidKey
		}
		return &ecdsaSigner{k: k, pub: pub, h: h}, nil
	}
}

// SignWithLabel signs SignContent{"MLS 1.0 "+label, content} (RFC 9420,
// Section 5.1.2). For a single signature; use NewSigner to sign repeatedly
// with the same key.
func (s *Suite) SignWithLabel(priv []byte, label string, content []byte) ([]byte, error) {
	sg, err := s.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	return sg.SignWithLabel(label, content)
}

// VerifyWithLabel checks a signature over SignContent{"MLS 1.0 "+label,
// content} (RFC 9420, Section 5.1.2). It returns ErrInvalidKey if pub is
// malformed and ErrInvalidSignature if the signature does not verify.
func (s *Suite) VerifyWithLabel(pub []byte, label string, content, sig []byte) error {
	if len(content) > maxVarint {
		return ErrInvalidSignature
	}
	return s.VerifySignContent(pub, signContent(label, content), sig)
}

// SignContentHeaderSize is the length of what AppendSignContentHeader
// appends: at most 4+len("MLS 1.0 ")+len(label)+4.
func SignContentHeaderSize(label string, contentLen int) int {
	l := len(labelPrefix) + len(label)
	return codec.VarintLen(uint64(l)) + l + codec.VarintLen(uint64(contentLen))
}

// AppendSignContentHeader appends to b the bytes of SignContent{"MLS 1.0
// "+label, content} (RFC 9420, Section 5.1.2) that come before content, for
// a content of contentLen bytes (at most 2^30-1). With content appended,
// the result is what VerifySignContent takes: a caller with a large content
// (a commit with a ciphertext per member) lays it out once, in place.
func AppendSignContentHeader(b []byte, label string, contentLen int) []byte {
	b = appendLabel(b, label)
	return appendVarint(b, contentLen)
}

// VerifySignContent is VerifyWithLabel for a SignContent already encoded
// (AppendSignContentHeader, then the content).
func (s *Suite) VerifySignContent(pub, tbs, sig []byte) error {
	switch s.sig {
	case ed25519Sig:
		if len(pub) != ed25519.PublicKeySize {
			return ErrInvalidKey
		}
		// RFC 9420, Section 5.1.2: pure EdDSA (RFC 8032), no context.
		if !ed25519.Verify(pub, tbs, sig) {
			return ErrInvalidSignature
		}
		return nil
	case ed448Sig:
		if len(pub) != ed448.PublicKeySize {
			return ErrInvalidKey
		}
		if !ed448.Verify(pub, tbs, sig, "") {
			return ErrInvalidSignature
		}
		return nil
	default:
		c, _, h := s.sig.curve()
		if c == nil {
			return ErrUnsupported
		}
		k, err := ecdsa.ParseUncompressedPublicKey(c, pub)
		if err != nil {
			return ErrInvalidKey
		}
		if !ecdsa.VerifyASN1(k, digest(h, tbs), sig) {
			return ErrInvalidSignature
		}
		return nil
	}
}

// signContent encodes SignContent (RFC 9420, Section 5.1.2):
//
//	struct { opaque label<V>; opaque content<V>; } SignContent;
func signContent(label string, content []byte) []byte {
	b := make([]byte, 0, 4+len(labelPrefix)+len(label)+4+len(content))
	b = appendLabel(b, label)
	return appendOpaque(b, content)
}

func digest(h crypto.Hash, m []byte) []byte {
	d := h.New()
	d.Write(m)
	return d.Sum(nil)
}

type ed25519Signer struct {
	k   ed25519.PrivateKey
	pub ed25519.PublicKey
}

func (e *ed25519Signer) PublicKey() []byte { return append([]byte(nil), e.pub...) }

func (e *ed25519Signer) SignWithLabel(label string, content []byte) ([]byte, error) {
	if len(content) > maxVarint {
		return nil, errTooLong
	}
	return e.SignSignContent(signContent(label, content))
}

// SignSignContent signs a SignContent already encoded (see
// ContentSigner).
func (e *ed25519Signer) SignSignContent(tbs []byte) ([]byte, error) {
	return ed25519.Sign(e.k, tbs), nil
}

type ed448Signer struct {
	k   ed448.PrivateKey
	pub ed448.PublicKey
}

func (e *ed448Signer) PublicKey() []byte { return append([]byte(nil), e.pub...) }

func (e *ed448Signer) SignWithLabel(label string, content []byte) ([]byte, error) {
	if len(content) > maxVarint {
		return nil, errTooLong
	}
	return e.SignSignContent(signContent(label, content))
}

// SignSignContent signs a SignContent already encoded (see
// ContentSigner).
func (e *ed448Signer) SignSignContent(tbs []byte) ([]byte, error) {
	return ed448.Sign(e.k, tbs, ""), nil
}

type ecdsaSigner struct {
	k   *ecdsa.PrivateKey
	pub []byte
	h   crypto.Hash
}

func (e *ecdsaSigner) PublicKey() []byte { return append([]byte(nil), e.pub...) }

func (e *ecdsaSigner) SignWithLabel(label string, content []byte) ([]byte, error) {
	if len(content) > maxVarint {
		return nil, errTooLong
	}
	return e.SignSignContent(signContent(label, content))
}

// SignSignContent signs a SignContent already encoded (see
// ContentSigner).
func (e *ecdsaSigner) SignSignContent(tbs []byte) ([]byte, error) {
	// ASN.1 DER signature, as TLS 1.3 encodes ECDSA (RFC 9420, Section
	// 5.1.2). The randomness comes from crypto/rand.
	sig, err := ecdsa.SignASN1(rand.Reader, e.k, digest(e.h, tbs))
	if err != nil {
		return nil, fmt.Errorf("mls: ECDSA signing: %w", err)
	}
	return sig, nil
}

var errTooLong = errors.New("mls: input longer than an MLS opaque<V> allows")

// leftPad restores leading zero octets to a big-endian scalar shorter than n
// bytes. Field-Element-to-Octet-String is fixed-length, but some
// implementations drop leading zero octets: the official vectors
// (passive-client-*.json, message-protection.json) hold 65-byte P-521 keys.
// The integer is the same, so accept it; what we output is always n bytes.
func leftPad(b []byte, n int) ([]byte, bool) {
	switch {
	case len(b) == n:
		return b, true
	case len(b) == 0 || len(b) > n:
		return nil, false
	}
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out, true
}
