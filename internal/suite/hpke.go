package suite

import (
	"crypto/ecdh"
	"crypto/hpke"
	"fmt"
	"io"
)

// kem is one HPKE ciphersuite (KEM, KDF and AEAD) in base mode, with keys as
// SerializePrivateKey/SerializePublicKey bytes (RFC 9180).
type kem interface {
	// nsk is the length of the input DeriveKeyPair needs (Nsk).
	nsk() int
	deriveKeyPair(ikm []byte) (priv, pub []byte, err error)
	publicKey(priv []byte) ([]byte, error)
	validatePublic(pub []byte) error
	// seal is the single-shot SealBase of RFC 9180, Section 6.1.
	seal(pub, info, aad, plaintext []byte) (enc, ct []byte, err error)
	// open is the single-shot OpenBase of RFC 9180, Section 6.1.
	open(priv, info, aad, enc, ct []byte) ([]byte, error)
	// exportSender is SetupBaseS then Export (RFC 9180, Sections 5.1, 5.3).
	exportSender(pub, info, exporterContext []byte, length int) (enc, secret []byte, err error)
	// exportReceiver is SetupBaseR then Export.
	exportReceiver(priv, enc, info, exporterContext []byte, length int) ([]byte, error)
}

var (
	hpkeAES128GCM        = hpke.AES128GCM()
	hpkeAES256GCM        = hpke.AES256GCM()
	hpkeChaCha20Poly1305 = hpke.ChaCha20Poly1305()
	hpkeSHA256           = hpke.HKDFSHA256()
	hpkeSHA384           = hpke.HKDFSHA384()

	kemMLKEM768X25519 = hpke.MLKEM768X25519()
	kemMLKEM768P256   = hpke.MLKEM768P256()
	kemMLKEM1024P384  = hpke.MLKEM1024P384()
	kemMLKEM768       = hpke.MLKEM768()
	kemMLKEM1024      = hpke.MLKEM1024()
)

// dhCurve names the DHKEMs crypto/hpke implements.
type dhCurve uint8

const (
	kemX25519 dhCurve = iota + 1 // DHKEM(X25519, HKDF-SHA256), 0x0020
	kemP256                      // DHKEM(P-256, HKDF-SHA256), 0x0010
	kemP384                      // DHKEM(P-384, HKDF-SHA384), 0x0011
	kemP521                      // DHKEM(P-521, HKDF-SHA512), 0x0012
)

// stdKEM is an HPKE ciphersuite whose KEM crypto/hpke implements.
type stdKEM struct {
	k    hpke.KEM
	kdf  hpke.KDF
	aead hpke.AEAD
	n    int // Nsk

	// For DHKEM(X25519): DeriveKeyPair is done here, because crypto/hpke
	// serializes X25519 private keys clamped while MLS (and its test
	// vectors) keep the DeriveKeyPair output unclamped.
	x25519 bool

	// scalar: private keys are NIST-curve scalars (DHKEM P-256/384/521).
	scalar bool

	// dh runs SealBase here, for LabeledSealer (hpke_many.go); for
	// X25519 it runs every HPKE operation (x25519.go says why).
	dh *dhkem
}

// newDHKEM returns DHKEM over curve c with the matching HKDF, as RFC 9420's
// suites use them (Section 17.1), and aead.
func newDHKEM(c dhCurve, aead hpke.AEAD) kem {
	k := newStdDHKEM(c, aead)
	k.dh = newDHKEMSealer(c, k.kdf.ID(), aead.ID())
	return k
}

func newStdDHKEM(c dhCurve, aead hpke.AEAD) *stdKEM {
	switch c {
	case kemX25519:
		return &stdKEM{k: hpke.DHKEM(ecdh.X25519()), kdf: hpkeSHA256, aead: aead, n: 32, x25519: true}
	case kemP256:
		return &stdKEM{k: hpke.DHKEM(ecdh.P256()), kdf: hpkeSHA256, aead: aead, n: 32, scalar: true}
	case kemP384:
		return &stdKEM{k: hpke.DHKEM(ecdh.P384()), kdf: hpkeSHA384, aead: aead, n: 48, scalar: true}
	case kemP521:
		return &stdKEM{k: hpke.DHKEM(ecdh.P521()), kdf: hpke.HKDFSHA512(), aead: aead, n: 66, scalar: true}
	}
	panic("suite: bad DHKEM curve")
}

// newPQKEM returns an ML-KEM or hybrid KEM of draft-ietf-hpke-pq with kdf
// and aead (draft-ietf-mls-pq-ciphersuites).
func newPQKEM(k hpke.KEM, kdf hpke.KDF, aead hpke.AEAD) kem {
	n := 32 // the hybrids' seed (draft-ietf-hpke-pq)
	if k.ID() == kemMLKEM768.ID() || k.ID() == kemMLKEM1024.ID() {
		n = 64 // ML-KEM's (d, z) seed
	}
	return &stdKEM{k: k, kdf: kdf, aead: aead, n: n}
}

func (s *stdKEM) nsk() int { return s.n }

// own returns the DHKEM that runs every HPKE operation of s here rather
// than in crypto/hpke: X25519's (x25519.go says why), else nil.
func (s *stdKEM) own() *dhkem {
	if s.x25519 {
		return s.dh
	}
	return nil
}

// x25519DerivePrivate is DeriveKeyPair's private key for X25519 (RFC 9180,
// Section 7.1.3): LabeledExpand of dkp_prk, used as is.
func x25519DerivePrivate(ikm []byte) []byte {
	suiteID := []byte{'K', 'E', 'M', 0x00, 0x20}
	prk := labeledExtract(kdfSHA256, suiteID, nil, "dkp_prk", ikm)
	defer clear(prk)
	return labeledExpand(kdfSHA256, suiteID, prk, "sk", nil, 32)
}

func (s *stdKEM) deriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	if s.x25519 {
		priv = x25519DerivePrivate(ikm)
		pub, err = s.publicKey(priv)
		return priv, pub, err
	}
	k, err := s.k.DeriveKeyPair(ikm)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: DeriveKeyPair: %w", err)
	}
	priv, err = k.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: DeriveKeyPair: %w", err)
	}
	return priv, k.PublicKey().Bytes(), nil
}

func (s *stdKEM) privateKey(priv []byte) (hpke.PrivateKey, error) {
	if s.scalar {
		// A NIST-curve scalar may come without its leading zero octets
		// (see leftPad).
		var ok bool
		if priv, ok = leftPad(priv, s.n); !ok {
			return nil, ErrInvalidKey
		}
	}
	if len(priv) != s.n {
		return nil, ErrInvalidKey
	}
	k, err := s.k.NewPrivateKey(priv)
	if err != nil {
		return nil, ErrInvalidKey
	}
	return k, nil
}

func (s *stdKEM) publicKey(priv []byte) ([]byte, error) {
	if s.x25519 {
		return x25519Public(priv)
	}
	k, err := s.privateKey(priv)
	if err != nil {
		return nil, err
	}
	return k.PublicKey().Bytes(), nil
}

func (s *stdKEM) validatePublic(pub []byte) error {
	if _, err := s.k.NewPublicKey(pub); err != nil {
		return ErrInvalidKey
	}
	return nil
}

func (s *stdKEM) seal(pub, info, aad, plaintext []byte) (enc, ct []byte, err error) {
	if d := s.own(); d != nil {
		return d.seal(pub, info, aad, plaintext)
	}
	pk, err := s.k.NewPublicKey(pub)
	if err != nil {
		return nil, nil, ErrInvalidKey
	}
	enc, sender, err := hpke.NewSender(pk, s.kdf, s.aead, info)
	if err != nil {
		// The DH output was zero: a low-order public key.
		return nil, nil, ErrInvalidKey
	}
	ct, err = sender.Seal(aad, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE seal: %w", err)
	}
	return enc, ct, nil
}

func (s *stdKEM) open(priv, info, aad, enc, ct []byte) ([]byte, error) {
	if d := s.own(); d != nil {
		return d.open(priv, info, aad, enc, ct)
	}
	sk, err := s.privateKey(priv)
	if err != nil {
		return nil, err
	}
	r, err := hpke.NewRecipient(enc, sk, s.kdf, s.aead, info)
	if err != nil {
		return nil, ErrDecrypt // malformed or low-order KEM output
	}
	pt, err := r.Open(aad, ct)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

func (s *stdKEM) exportSender(pub, info, exporterContext []byte, length int) (enc, secret []byte, err error) {
	if d := s.own(); d != nil {
		shared, enc, err := d.encap(pub)
		if err != nil {
			return nil, nil, err
		}
		return enc, d.export(shared, info, exporterContext, length), nil
	}
	pk, err := s.k.NewPublicKey(pub)
	if err != nil {
		return nil, nil, ErrInvalidKey
	}
	enc, sender, err := hpke.NewSender(pk, s.kdf, s.aead, info)
	if err != nil {
		return nil, nil, ErrInvalidKey // low-order public key
	}
	secret, err = sender.Export(string(exporterContext), length)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE export: %w", err)
	}
	return enc, secret, nil
}

func (s *stdKEM) exportReceiver(priv, enc, info, exporterContext []byte, length int) ([]byte, error) {
	if d := s.own(); d != nil {
		shared, err := d.decap(priv, enc)
		if err != nil {
			return nil, err
		}
		return d.export(shared, info, exporterContext, length), nil
	}
	sk, err := s.privateKey(priv)
	if err != nil {
		return nil, err
	}
	r, err := hpke.NewRecipient(enc, sk, s.kdf, s.aead, info)
	if err != nil {
		return nil, ErrDecrypt // malformed or low-order KEM output
	}
	out, err := r.Export(string(exporterContext), length)
	if err != nil {
		return nil, fmt.Errorf("mls: HPKE export: %w", err)
	}
	return out, nil
}

// DeriveKeyPair is the KEM's DeriveKeyPair (RFC 9180, Section 7.1.3) as MLS
// uses it for tree and external keys (RFC 9420, Sections 7.4 and 8). priv is
// in the suite's private key format (see the package doc).
func (s *Suite) DeriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	return s.kem.deriveKeyPair(ikm)
}

// DeriveKeyPairs is DeriveKeyPair of each of ikms. For X25519 the public
// keys share one field inversion (x25519Publics), about a seventh of each
// key's cost: a commit's path derives a key per level, sent and received.
func (s *Suite) DeriveKeyPairs(ikms [][]byte) (privs, pubs [][]byte, err error) {
	privs = make([][]byte, len(ikms))
	if k, ok := s.kem.(*stdKEM); ok && k.x25519 {
		for i, ikm := range ikms {
			privs[i] = x25519DerivePrivate(ikm)
		}
		if pubs, err = x25519Publics(privs); err != nil {
			clearAll(privs)
			return nil, nil, err
		}
		return privs, pubs, nil
	}
	pubs = make([][]byte, len(ikms))
	for i, ikm := range ikms {
		if privs[i], pubs[i], err = s.kem.deriveKeyPair(ikm); err != nil {
			clearAll(privs)
			return nil, nil, err
		}
	}
	return privs, pubs, nil
}

// clearAll erases each of bs.
func clearAll(bs [][]byte) {
	for _, b := range bs {
		clear(b)
	}
}

// GenerateKEMKey is DeriveKeyPair of Nsk bytes read from rand, so the same
// stream gives the same key.
func (s *Suite) GenerateKEMKey(rand io.Reader) (priv, pub []byte, err error) {
	ikm := make([]byte, s.kem.nsk())
	if _, err := io.ReadFull(rand, ikm); err != nil {
		return nil, nil, fmt.Errorf("mls: generating HPKE key: %w", err)
	}
	defer clear(ikm)
	return s.kem.deriveKeyPair(ikm)
}

// KEMPublicKey returns the public key of an HPKE private key, or
// ErrInvalidKey.
func (s *Suite) KEMPublicKey(priv []byte) ([]byte, error) { return s.kem.publicKey(priv) }

// ValidateKEMPublicKey checks that pub deserializes as a public key of the
// suite's KEM (RFC 9180, Section 7.1.1: for NIST curves the point is on the
// curve; for X25519 and X448 only the length is checked here and a low-order
// point fails at encryption). It returns ErrInvalidKey otherwise.
func (s *Suite) ValidateKEMPublicKey(pub []byte) error { return s.kem.validatePublic(pub) }

// EncryptWithLabel encrypts to pub (RFC 9420, Section 5.1.3):
//
//	SealBase(PublicKey, EncryptContext, "", Plaintext)
//
// with EncryptContext{opaque label<V> = "MLS 1.0 "+label; opaque context<V>}.
func (s *Suite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	if len(context) > maxVarint {
		return nil, nil, errTooLong
	}
	return s.kem.seal(pub, encryptContext(label, context), nil, plaintext)
}

// DecryptWithLabel reverses EncryptWithLabel (RFC 9420, Section 5.1.3):
//
//	OpenBase(KEMOutput, PrivateKey, EncryptContext, "", Ciphertext)
//
// It returns ErrDecrypt if decryption fails and ErrInvalidKey if priv is
// malformed.
func (s *Suite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	if len(context) > maxVarint {
		return nil, ErrDecrypt
	}
	return s.kem.open(priv, encryptContext(label, context), nil, kemOutput, ciphertext)
}

// encryptContext encodes EncryptContext (RFC 9420, Section 5.1.3).
func encryptContext(label string, context []byte) []byte {
	return append(encryptContextHead(label, len(context), len(context)), context...)
}

// encryptContextHead is EncryptContext up to its context's octets, for a
// context of n octets, with room for extra more.
func encryptContextHead(label string, n, extra int) []byte {
	b := make([]byte, 0, 4+len(labelPrefix)+len(label)+4+extra)
	return appendVarint(appendLabel(b, label), n)
}

// HPKESeal is single-shot HPKE SealBase (RFC 9180, Section 6.1) with the
// suite's HPKE KEM, KDF and AEAD (RFC 9420, Section 5.1), for callers that
// build info and aad themselves. MLS's own uses (UpdatePath secrets, Section
// 7.6, and Welcome GroupSecrets, Section 12.4.3.1) go through
// EncryptWithLabel, which is HPKESeal with info = EncryptContext and empty
// aad.
func (s *Suite) HPKESeal(pub, info, aad, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	return s.kem.seal(pub, info, aad, plaintext)
}

// HPKEOpen is single-shot HPKE OpenBase (RFC 9180, Section 6.1). It returns
// ErrDecrypt if decryption fails and ErrInvalidKey if priv is malformed.
func (s *Suite) HPKEOpen(priv, info, aad, kemOutput, ciphertext []byte) ([]byte, error) {
	return s.kem.open(priv, info, aad, kemOutput, ciphertext)
}

// hpkeV1 is the version label of RFC 9180's labeled KDF calls.
const hpkeV1 = "HPKE-v1"

// labeledExtract is LabeledExtract of RFC 9180, Section 4:
//
//	Extract(salt, "HPKE-v1" || suite_id || label || ikm)
//
// where ikm is the concatenation of the pieces given.
func labeledExtract(k *kdfHash, suiteID, salt []byte, label string, ikm ...[]byte) []byte {
	m := k.get()
	m.info = append(append(append(m.info[:0], hpkeV1...), suiteID...), label...)
	m.begin(salt)
	m.inner.Write(m.info)
	for _, p := range ikm {
		m.inner.Write(p)
	}
	out := append(make([]byte, 0, m.size), m.finish()...)
	k.put(m)
	return out
}

// labeledExpand is LabeledExpand of RFC 9180, Section 4:
//
//	Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L)
func labeledExpand(k *kdfHash, suiteID, prk []byte, label string, info []byte, l int) []byte {
	out := make([]byte, l)
	m := k.get()
	m.info = append(m.info[:0], byte(l>>8), byte(l))
	m.info = append(append(append(append(m.info, hpkeV1...), suiteID...), label...), info...)
	m.expand(out, prk, m.info)
	k.put(m)
	return out
}
