package suite

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
)

// A LabeledSealer is EncryptWithLabel (RFC 9420, Section 5.1.3) under one
// label and context to many public keys. A Welcome encrypts each new
// member's GroupSecrets with the encrypted_group_info as context (Section
// 12.4.3.1); that context holds the GroupInfo and, usually, the whole
// ratchet tree, and HPKE hashes it into every key schedule (RFC 9180,
// Section 5.1: info_hash). Through EncryptWithLabel a commit adding k
// members to a group of n hashes k copies of an O(n) context; the sealer
// computes info_hash once. The ciphertexts are the same HPKE SealBase
// ciphertexts, opened by DecryptWithLabel or any other implementation.
//
// For the ML-KEM suites, whose encapsulation crypto/hpke does not expose,
// the sealer falls back to EncryptWithLabel.
//
// A LabeledSealer is safe for concurrent use.
type LabeledSealer struct {
	s        *Suite
	info     []byte // EncryptContext, for the fallback
	infoHash []byte // LabeledExtract("", "info_hash", info), nil for the fallback
	h        hashedSealer
}

// hashedSealer is a KEM whose SealBase this package runs itself, so that
// info_hash can be computed once.
type hashedSealer interface {
	infoHash(info ...[]byte) []byte // info is the concatenation of the pieces
	sealHashed(pub, infoHash, aad, plaintext []byte) (enc, ct []byte, err error)
}

// NewLabeledSealer returns a sealer for EncryptWithLabel(·, label, context, ·).
func (s *Suite) NewLabeledSealer(label string, context []byte) (*LabeledSealer, error) {
	if len(context) > maxVarint {
		return nil, errTooLong
	}
	ls := &LabeledSealer{s: s}
	if h, ok := s.kem.(hashedSealer); ok {
		// EncryptContext hashed in its pieces: the context (a Welcome's
		// whole encrypted GroupInfo) is not copied to be hashed.
		if ih := h.infoHash(encryptContextHead(label, len(context), 0), context); ih != nil {
			ls.h, ls.infoHash = h, ih
			return ls, nil
		}
	}
	ls.info = encryptContext(label, context)
	return ls, nil
}

// Seal is EncryptWithLabel(pub, label, context, plaintext).
func (ls *LabeledSealer) Seal(pub, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	if ls.h == nil {
		return ls.s.kem.seal(pub, ls.info, nil, plaintext)
	}
	return ls.h.sealHashed(pub, ls.infoHash, nil, plaintext)
}

// hpkeSchedule is the part of an HPKE ciphersuite (RFC 9180, Section 5.1)
// that SealBase needs after the KEM: the KDF's hash, the AEAD, and
// suite_id = "HPKE" || kem_id || kdf_id || aead_id.
type hpkeSchedule struct {
	kdf     *kdfHash
	aead    aeadAlg
	suiteID []byte
	// pskIDHash is LabeledExtract("", "psk_id_hash", ""): mode_base has no
	// PSK, so it is the same for every context of the suite.
	pskIDHash []byte
}

func newHPKESchedule(kemID, kdfID, aeadID uint16) (hpkeSchedule, bool) {
	var hs hpkeSchedule
	switch kdfID {
	case 0x0001:
		hs.kdf = kdfSHA256
	case 0x0002:
		hs.kdf = kdfSHA384
	case 0x0003:
		hs.kdf = kdfSHA512
	default:
		return hs, false
	}
	switch aeadID {
	case 0x0001:
		hs.aead = aesGCM128
	case 0x0002:
		hs.aead = aesGCM256
	case 0x0003:
		hs.aead = chacha20Poly1305
	default:
		return hs, false
	}
	hs.suiteID = []byte{'H', 'P', 'K', 'E', byte(kemID >> 8), byte(kemID), byte(kdfID >> 8), byte(kdfID), byte(aeadID >> 8), byte(aeadID)}
	hs.pskIDHash = labeledExtract(hs.kdf, hs.suiteID, nil, "psk_id_hash", nil)
	return hs, true
}

// infoHash is LabeledExtract("", "info_hash", info) (RFC 9180, Section 5.1).
func (hs *hpkeSchedule) infoHash(info ...[]byte) []byte {
	return labeledExtract(hs.kdf, hs.suiteID, nil, "info_hash", info...)
}

// secret is the part of KeySchedule for mode_base with no PSK (RFC 9180,
// Section 5.1) that every output shares: the secret and
// key_schedule_context. The caller expands what it needs and erases
// secret.
func (hs *hpkeSchedule) secret(shared, infoHash []byte) (secret, ctx []byte) {
	ctx = make([]byte, 0, 1+len(hs.pskIDHash)+len(infoHash))
	ctx = append(ctx, 0x00) // mode_base
	ctx = append(append(ctx, hs.pskIDHash...), infoHash...)
	return labeledExtract(hs.kdf, hs.suiteID, shared, "secret", nil), ctx
}

// first returns the AEAD and nonce of the first message of the context set
// up from shared and info_hash (base_nonce XOR I2OSP(0, Nn) = base_nonce),
// and erases shared and the key schedule's secrets.
func (hs *hpkeSchedule) first(shared, infoHash []byte) (cipher.AEAD, []byte, error) {
	secret, ctx := hs.secret(shared, infoHash)
	clear(shared)
	key := labeledExpand(hs.kdf, hs.suiteID, secret, "key", ctx, hs.aead.keySize())
	nonce := labeledExpand(hs.kdf, hs.suiteID, secret, "base_nonce", ctx, hs.aead.nonceSize())
	clear(secret)
	defer clear(key)
	a, err := hs.aead.new(key)
	return a, nonce, err
}

// sealFirst encrypts the first message of the context set up from shared
// and info_hash, and erases shared.
func (hs *hpkeSchedule) sealFirst(shared, infoHash, aad, plaintext []byte) ([]byte, error) {
	a, nonce, err := hs.first(shared, infoHash)
	if err != nil {
		return nil, err
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

// seal is SealBase (RFC 9180, Section 6.1) from info_hash, with encap the
// KEM's Encap.
func (hs *hpkeSchedule) seal(encap func(pub []byte) (shared, enc []byte, err error), pub, infoHash, aad, plaintext []byte) (enc, ct []byte, err error) {
	shared, enc, err := encap(pub)
	if err != nil {
		return nil, nil, err
	}
	ct, err = hs.sealFirst(shared, infoHash, aad, plaintext)
	if err != nil {
		return nil, nil, err
	}
	return enc, ct, nil
}

// openFirst decrypts the first message of the context set up from shared
// and info_hash, and erases shared.
func (hs *hpkeSchedule) openFirst(shared, infoHash, aad, ct []byte) ([]byte, error) {
	a, nonce, err := hs.first(shared, infoHash)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// export is Context.Export (RFC 9180, Section 5.3) of the context set up
// from shared and info_hash: LabeledExpand(exporter_secret, "sec",
// exporter_context, L). It erases shared and the schedule's secrets.
func (hs *hpkeSchedule) export(shared, infoHash, exporterContext []byte, length int) []byte {
	secret, ctx := hs.secret(shared, infoHash)
	clear(shared)
	exp := labeledExpand(hs.kdf, hs.suiteID, secret, "exp", ctx, hs.kdf.size)
	clear(secret)
	defer clear(exp)
	return labeledExpand(hs.kdf, hs.suiteID, exp, "sec", exporterContext, length)
}

// dhkem is DHKEM (RFC 9180, Section 4.1) over a crypto/ecdh curve, for
// the sealer: Encap, then the key schedule of hs.
type dhkem struct {
	x25519  bool // Encap and Decap by x25519.go, not crypto/ecdh
	curve   ecdh.Curve
	kemHash *kdfHash // the KEM's own HKDF hash
	nsecret int      // Nsecret
	kemID   []byte   // "KEM" || I2OSP(kem_id, 2)
	hs      hpkeSchedule
}

// newDHKEMSealer returns the sealer half of DHKEM(c) with the given KDF and
// AEAD ids, or nil if one of them is not one this package knows.
func newDHKEMSealer(c dhCurve, kdfID, aeadID uint16) *dhkem {
	d := &dhkem{}
	var id uint16
	switch c {
	case kemX25519:
		d.curve, d.kemHash, d.nsecret, id = ecdh.X25519(), kdfSHA256, 32, 0x0020
		d.x25519 = true
	case kemP256:
		d.curve, d.kemHash, d.nsecret, id = ecdh.P256(), kdfSHA256, 32, 0x0010
	case kemP384:
		d.curve, d.kemHash, d.nsecret, id = ecdh.P384(), kdfSHA384, 48, 0x0011
	case kemP521:
		d.curve, d.kemHash, d.nsecret, id = ecdh.P521(), kdfSHA512, 64, 0x0012
	default:
		return nil
	}
	hs, ok := newHPKESchedule(id, kdfID, aeadID)
	if !ok {
		return nil
	}
	d.hs = hs
	d.kemID = []byte{'K', 'E', 'M', byte(id >> 8), byte(id)}
	return d
}

// encap is Encap (RFC 9180, Section 4.1) with an ephemeral key drawn from
// crypto/rand.
func (d *dhkem) encap(pub []byte) (shared, enc []byte, err error) {
	if d.x25519 {
		dh, enc, err := x25519Encap(pub)
		if err != nil {
			return nil, nil, err
		}
		defer clear(dh)
		return d.extractAndExpand(dh, enc, pub), enc, nil
	}
	skE, err := d.curve.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE ephemeral key: %w", err)
	}
	pkR, err := d.curve.NewPublicKey(pub)
	if err != nil {
		return nil, nil, ErrInvalidKey
	}
	dh, err := skE.ECDH(pkR)
	if err != nil {
		return nil, nil, ErrInvalidKey // low-order public key (RFC 9180, Section 7.1.4)
	}
	defer clear(dh)
	enc = skE.PublicKey().Bytes()
	return d.extractAndExpand(dh, enc, pkR.Bytes()), enc, nil
}

// extractAndExpand is ExtractAndExpand of DHKEM (RFC 9180, Section 4.1)
// with kem_context = enc || pkRm.
func (d *dhkem) extractAndExpand(dh, enc, pkR []byte) []byte {
	return extractAndExpand(d.kemHash, d.kemID, dh, enc, pkR, d.nsecret)
}

// extractAndExpand is ExtractAndExpand of DHKEM (RFC 9180, Section 4.1):
// kemID is "KEM" || I2OSP(kem_id, 2), kem_context = enc || pkRm.
func extractAndExpand(h *kdfHash, kemID, dh, enc, pkR []byte, nsecret int) []byte {
	prk := labeledExtract(h, kemID, nil, "eae_prk", dh)
	defer clear(prk)
	kemContext := make([]byte, 0, len(enc)+len(pkR))
	kemContext = append(append(kemContext, enc...), pkR...)
	return labeledExpand(h, kemID, prk, "shared_secret", kemContext, nsecret)
}

func (d *dhkem) infoHash(info ...[]byte) []byte { return d.hs.infoHash(info...) }

func (d *dhkem) sealHashed(pub, infoHash, aad, plaintext []byte) (enc, ct []byte, err error) {
	return d.hs.seal(d.encap, pub, infoHash, aad, plaintext)
}

// decap is Decap (RFC 9180, Section 4.1), for X25519 only (the other
// curves open through crypto/hpke).
func (d *dhkem) decap(priv, enc []byte) ([]byte, error) {
	dh, pkR, err := x25519Decap(priv, enc)
	if err != nil {
		return nil, err
	}
	defer clear(dh)
	return d.extractAndExpand(dh, enc, pkR), nil
}

// seal is SealBase (RFC 9180, Section 6.1).
func (d *dhkem) seal(pub, info, aad, plaintext []byte) (enc, ct []byte, err error) {
	return d.sealHashed(pub, d.hs.infoHash(info), aad, plaintext)
}

// open is OpenBase (RFC 9180, Section 6.1).
func (d *dhkem) open(priv, info, aad, enc, ct []byte) ([]byte, error) {
	shared, err := d.decap(priv, enc)
	if err != nil {
		return nil, err
	}
	return d.hs.openFirst(shared, d.hs.infoHash(info), aad, ct)
}

// export is Context.Export of the context set up from shared.
func (d *dhkem) export(shared, info, exporterContext []byte, length int) []byte {
	return d.hs.export(shared, d.hs.infoHash(info), exporterContext, length)
}

// stdKEM seals with a hashed info through its DHKEM twin, when it has one.

func (s *stdKEM) infoHash(info ...[]byte) []byte {
	if s.dh == nil {
		return nil
	}
	return s.dh.infoHash(info...)
}

func (s *stdKEM) sealHashed(pub, infoHash, aad, plaintext []byte) (enc, ct []byte, err error) {
	return s.dh.sealHashed(pub, infoHash, aad, plaintext)
}

// X448 has its own key schedule already (x448.go).

func (k *x448KEM) infoHash(info ...[]byte) []byte { return k.hs.infoHash(info...) }

func (k *x448KEM) sealHashed(pub, infoHash, aad, plaintext []byte) (enc, ct []byte, err error) {
	return k.hs.seal(k.encap, pub, infoHash, aad, plaintext)
}
