// Package suite implements the MLS cipher suites and the cryptographic
// primitives of RFC 9420, Section 5: the labeled KDF functions
// (ExpandWithLabel, DeriveSecret, DeriveTreeSecret), RefHash, the AEAD,
// signatures with SignWithLabel/VerifyWithLabel and public-key encryption with
// EncryptWithLabel/DecryptWithLabel over HPKE (RFC 9180).
//
// # Suites
//
// A *Suite is obtained with Lookup from its IANA code point (RFC 9420,
// Section 17.1). Suites are immutable, hold no per-call state and are safe for
// concurrent use. All seven suites of RFC 9420 are implemented, plus the eight
// post-quantum suites of draft-ietf-mls-pq-ciphersuites whose signature
// scheme is Ed25519 or ECDSA (under provisional private-use code points; see
// MLS128MLKEM768X25519AES128GCMSHA256Ed25519).
//
// # Key formats
//
// Keys are byte strings in the formats of the MLS interop test vectors:
//
//   - HPKE private keys: SerializePrivateKey of RFC 9180 (for X25519 and X448
//     the unclamped scalar bytes as derived by DeriveKeyPair; for ML-KEM and
//     the hybrid KEMs the seed of draft-ietf-hpke-pq); public keys:
//     SerializePublicKey.
//   - Signature private keys: Ed25519/Ed448 the RFC 8032 seed (32/57 bytes);
//     ECDSA the fixed-length big-endian scalar (SEC 1 Field-Element-to-Octet-
//     String). Public keys: Ed25519/Ed448 raw; ECDSA the uncompressed point.
//   - ECDSA signatures are ASN.1 DER, as in TLS 1.3 (RFC 9420, Section 5.1.2).
//   - NIST-curve private keys (ECDSA and DHKEM P-256/P-384/P-521) shorter
//     than the fixed length are accepted as the same integer with its
//     leading zero octets dropped, as some implementations (and the official
//     P-521 vectors) write them; keys this package outputs are always fixed
//     length.
//
// # Errors
//
// Operations on bytes that may come from a peer fail with errors wrapping one
// of ErrInvalidSignature, ErrDecrypt or ErrInvalidKey; check with errors.Is.
// Errors never contain key material.
//
// # Randomness
//
// Signing and HPKE encryption draw randomness from crypto/rand, including the
// X448 HPKE implemented here, so testing/cryptotest.SetGlobalRandom makes
// them repeatable in tests. Key generation reads from the io.Reader it is
// given and is deterministic for a given stream.
package suite

import (
	"crypto"
	"errors"
)

// ID is a cipher suite code point (RFC 9420, Section 17.1).
type ID uint16

// The cipher suites of RFC 9420, Section 17.1.
const (
	MLS128DHKEMX25519AES128GCMSHA256Ed25519        ID = 0x0001
	MLS128DHKEMP256AES128GCMSHA256P256             ID = 0x0002
	MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519 ID = 0x0003
	MLS256DHKEMX448AES256GCMSHA512Ed448            ID = 0x0004
	MLS256DHKEMP521AES256GCMSHA512P521             ID = 0x0005
	MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448     ID = 0x0006
	MLS256DHKEMP384AES256GCMSHA384P384             ID = 0x0007
)

// The post-quantum cipher suites of draft-ietf-mls-pq-ciphersuites, Section
// "IANA Considerations", TBD1 to TBD8 in the draft's order.
//
// PROVISIONAL: IANA has not assigned these code points yet. Until it does,
// mlskit uses values from the private-use range 0xF000-0xFFFF of the MLS
// Cipher Suites registry (RFC 9420, Section 17.1), which other implementations
// will not recognise. They will change when the draft is published.
//
// The ML-DSA suites (TBD9-TBD11) are not implemented: Go's standard library
// has no ML-DSA.
const (
	MLS128MLKEM768X25519AES128GCMSHA256Ed25519 ID = 0xF001 // TBD1, provisional
	MLS128MLKEM768X25519AES256GCMSHA384Ed25519 ID = 0xF002 // TBD2, provisional
	MLS128MLKEM768P256AES128GCMSHA256P256      ID = 0xF003 // TBD3, provisional
	MLS128MLKEM768P256AES256GCMSHA384P256      ID = 0xF004 // TBD4, provisional
	MLS192MLKEM1024P384AES256GCMSHA384P384     ID = 0xF005 // TBD5, provisional
	MLS128MLKEM768AES256GCMSHA384Ed25519       ID = 0xF006 // TBD6, provisional
	MLS128MLKEM768AES256GCMSHA384P256          ID = 0xF007 // TBD7, provisional
	MLS192MLKEM1024AES256GCMSHA384P384         ID = 0xF008 // TBD8, provisional
)

// Errors. Each error returned for bad input wraps one of these.
var (
	// ErrUnsupported: the cipher suite is not implemented.
	ErrUnsupported = errors.New("mls: unsupported cipher suite")
	// ErrInvalidSignature: a signature did not verify (or was malformed).
	ErrInvalidSignature = errors.New("mls: invalid signature")
	// ErrDecrypt: AEAD or HPKE decryption failed (wrong key, tampered
	// ciphertext or AAD, malformed KEM output).
	ErrDecrypt = errors.New("mls: decryption failed")
	// ErrInvalidKey: public or private key bytes are malformed or of the
	// wrong length for the suite.
	ErrInvalidKey = errors.New("mls: invalid key")
)

// Labels prefix (RFC 9420, Section 5.1.2, 5.1.3 and 8).
const labelPrefix = "MLS 1.0 "

// Suite is one cipher suite. It is immutable and safe for concurrent use.
type Suite struct {
	id ID

	// KDF and hash: HKDF and HMAC over the same hash (RFC 9420, Section 5.1).
	kdf *kdfHash // its size is Nh

	aead aeadAlg
	nk   int
	nn   int

	sig sigAlg

	kem kem
}

// table lists every implemented suite (RFC 9420, Section 17.1, and
// draft-ietf-mls-pq-ciphersuites, IANA Considerations).
var table = map[ID]*Suite{}

// order is the order Supported returns.
var order []ID

func add(id ID, h crypto.Hash, a aeadAlg, sig sigAlg, k kem) {
	s := &Suite{id: id, aead: a, sig: sig, kem: k}
	switch h {
	case crypto.SHA256:
		s.kdf = kdfSHA256
	case crypto.SHA384:
		s.kdf = kdfSHA384
	case crypto.SHA512:
		s.kdf = kdfSHA512
	default:
		panic("suite: bad hash")
	}
	s.nk, s.nn = a.keySize(), a.nonceSize()
	table[id] = s
	order = append(order, id)
}

func init() {
	// RFC 9420, Section 17.1.
	add(MLS128DHKEMX25519AES128GCMSHA256Ed25519, crypto.SHA256, aesGCM128, ed25519Sig, newDHKEM(kemX25519, hpkeAES128GCM))
	add(MLS128DHKEMP256AES128GCMSHA256P256, crypto.SHA256, aesGCM128, ecdsaP256, newDHKEM(kemP256, hpkeAES128GCM))
	add(MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519, crypto.SHA256, chacha20Poly1305, ed25519Sig, newDHKEM(kemX25519, hpkeChaCha20Poly1305))
	add(MLS256DHKEMX448AES256GCMSHA512Ed448, crypto.SHA512, aesGCM256, ed448Sig, newX448KEM(aesGCM256))
	add(MLS256DHKEMP521AES256GCMSHA512P521, crypto.SHA512, aesGCM256, ecdsaP521, newDHKEM(kemP521, hpkeAES256GCM))
	add(MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448, crypto.SHA512, chacha20Poly1305, ed448Sig, newX448KEM(chacha20Poly1305))
	add(MLS256DHKEMP384AES256GCMSHA384P384, crypto.SHA384, aesGCM256, ecdsaP384, newDHKEM(kemP384, hpkeAES256GCM))

	// draft-ietf-mls-pq-ciphersuites, IANA Considerations: KEM, KDF and
	// AEAD ids, hash and signature scheme of TBD1-TBD8.
	add(MLS128MLKEM768X25519AES128GCMSHA256Ed25519, crypto.SHA256, aesGCM128, ed25519Sig, newPQKEM(kemMLKEM768X25519, hpkeSHA256, hpkeAES128GCM))
	add(MLS128MLKEM768X25519AES256GCMSHA384Ed25519, crypto.SHA384, aesGCM256, ed25519Sig, newPQKEM(kemMLKEM768X25519, hpkeSHA384, hpkeAES256GCM))
	add(MLS128MLKEM768P256AES128GCMSHA256P256, crypto.SHA256, aesGCM128, ecdsaP256, newPQKEM(kemMLKEM768P256, hpkeSHA256, hpkeAES128GCM))
	add(MLS128MLKEM768P256AES256GCMSHA384P256, crypto.SHA384, aesGCM256, ecdsaP256, newPQKEM(kemMLKEM768P256, hpkeSHA384, hpkeAES256GCM))
	add(MLS192MLKEM1024P384AES256GCMSHA384P384, crypto.SHA384, aesGCM256, ecdsaP384, newPQKEM(kemMLKEM1024P384, hpkeSHA384, hpkeAES256GCM))
	add(MLS128MLKEM768AES256GCMSHA384Ed25519, crypto.SHA384, aesGCM256, ed25519Sig, newPQKEM(kemMLKEM768, hpkeSHA384, hpkeAES256GCM))
	add(MLS128MLKEM768AES256GCMSHA384P256, crypto.SHA384, aesGCM256, ecdsaP256, newPQKEM(kemMLKEM768, hpkeSHA384, hpkeAES256GCM))
	add(MLS192MLKEM1024AES256GCMSHA384P384, crypto.SHA384, aesGCM256, ecdsaP384, newPQKEM(kemMLKEM1024, hpkeSHA384, hpkeAES256GCM))
}

// Lookup returns the shared instance of the suite id, or ErrUnsupported.
func Lookup(id ID) (*Suite, error) {
	if s, ok := table[id]; ok {
		return s, nil
	}
	return nil, ErrUnsupported
}

// Supported returns the ids of all suites this build implements, RFC 9420
// suites first.
func Supported() []ID { return append([]ID(nil), order...) }

// ID returns the suite's code point.
func (s *Suite) ID() ID { return s.id }

// HashSize returns Nh, the output size of the hash and of KDF.Extract.
func (s *Suite) HashSize() int { return s.kdf.size }

// KeySize returns the AEAD key size Nk.
func (s *Suite) KeySize() int { return s.nk }

// NonceSize returns the AEAD nonce size Nn.
func (s *Suite) NonceSize() int { return s.nn }

// AEADOverhead is how much longer Seal's output is than its plaintext: the
// tag, 16 octets for each AEAD of RFC 9420, Section 17.1 (AES-GCM and
// ChaCha20-Poly1305).
func (s *Suite) AEADOverhead() int { return 16 }

// String returns the suite's name.
func (s *Suite) String() string { return s.id.String() }

// String returns the suite's registry name (RFC 9420, Section 17.1).
func (id ID) String() string {
	switch id {
	case MLS128DHKEMX25519AES128GCMSHA256Ed25519:
		return "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"
	case MLS128DHKEMP256AES128GCMSHA256P256:
		return "MLS_128_DHKEMP256_AES128GCM_SHA256_P256"
	case MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519:
		return "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519"
	case MLS256DHKEMX448AES256GCMSHA512Ed448:
		return "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448"
	case MLS256DHKEMP521AES256GCMSHA512P521:
		return "MLS_256_DHKEMP521_AES256GCM_SHA512_P521"
	case MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448:
		return "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448"
	case MLS256DHKEMP384AES256GCMSHA384P384:
		return "MLS_256_DHKEMP384_AES256GCM_SHA384_P384"
	case MLS128MLKEM768X25519AES128GCMSHA256Ed25519:
		return "MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519"
	case MLS128MLKEM768X25519AES256GCMSHA384Ed25519:
		return "MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519"
	case MLS128MLKEM768P256AES128GCMSHA256P256:
		return "MLS_128_MLKEM768P256_AES128GCM_SHA256_P256"
	case MLS128MLKEM768P256AES256GCMSHA384P256:
		return "MLS_128_MLKEM768P256_AES256GCM_SHA384_P256"
	case MLS192MLKEM1024P384AES256GCMSHA384P384:
		return "MLS_192_MLKEM1024P384_AES256GCM_SHA384_P384"
	case MLS128MLKEM768AES256GCMSHA384Ed25519:
		return "MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519"
	case MLS128MLKEM768AES256GCMSHA384P256:
		return "MLS_128_MLKEM768_AES256GCM_SHA384_P256"
	case MLS192MLKEM1024AES256GCMSHA384P384:
		return "MLS_192_MLKEM1024_AES256GCM_SHA384_P384"
	}
	return "unknown cipher suite 0x" + hex16(uint16(id))
}

func hex16(v uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf]})
}
