package suite

import (
	"crypto/rand"
	"fmt"

	"github.com/cloudflare/circl/dh/x448"
)

// x448KEM is HPKE (RFC 9180) base mode with DHKEM(X448, HKDF-SHA512) (KEM id
// 0x0021), HKDF-SHA512 (KDF id 0x0003) and AES-256-GCM or ChaCha20-Poly1305,
// as suites 4 and 6 use (RFC 9420, Section 17.1). crypto/hpke has no X448
// and its KEM interface is sealed, so this is a small implementation of its
// own, built on circl's X448 (RFC 7748). Only what MLS needs is here: the
// single-shot SealBase/OpenBase (sequence number 0), the exporter (for
// external init) and DeriveKeyPair.
type x448KEM struct {
	hs hpkeSchedule // HKDF-SHA512 and the suite's AEAD (hpke_many.go)
}

const (
	x448KEMID   = 0x0021
	hkdfSHA512  = 0x0003
	x448Nsk     = x448.Size // 56
	x448Nsecret = 64        // Nh of SHA-512
)

// x448KEMSuiteID is "KEM" || I2OSP(kem_id, 2) (RFC 9180, Section 4.1).
var x448KEMSuiteID = []byte{'K', 'E', 'M', 0x00, x448KEMID}

func newX448KEM(a aeadAlg) kem {
	var aeadID uint16
	switch a {
	case aesGCM256:
		aeadID = 0x02
	case chacha20Poly1305:
		aeadID = 0x03
	default:
		panic("suite: bad AEAD for X448")
	}
	hs, ok := newHPKESchedule(x448KEMID, hkdfSHA512, aeadID)
	if !ok {
		panic("suite: bad HPKE ids for X448")
	}
	return &x448KEM{hs: hs}
}

func (k *x448KEM) nsk() int { return x448Nsk }

// deriveKeyPair is DeriveKeyPair for X448 (RFC 9180, Section 7.1.3): the
// private key is LabeledExpand(dkp_prk, "sk", "", Nsk), kept unclamped
// (clamping happens inside the X448 function, RFC 7748, Section 5).
func (k *x448KEM) deriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	prk := labeledExtract(kdfSHA512, x448KEMSuiteID, nil, "dkp_prk", ikm)
	priv = labeledExpand(kdfSHA512, x448KEMSuiteID, prk, "sk", nil, x448Nsk)
	clear(prk)
	pub, err = k.publicKey(priv)
	return priv, pub, err
}

func (k *x448KEM) publicKey(priv []byte) ([]byte, error) {
	if len(priv) != x448Nsk {
		return nil, ErrInvalidKey
	}
	var sk, pk x448.Key
	copy(sk[:], priv)
	x448.KeyGen(&pk, &sk)
	clear(sk[:])
	return pk[:], nil
}

// validatePublic checks the length (DeserializePublicKey, RFC 9180, Section
// 7.1.1). A low-order point is rejected when it is used: the DH output is
// then zero (RFC 9180, Section 7.1.4).
func (k *x448KEM) validatePublic(pub []byte) error {
	if len(pub) != x448.Size {
		return ErrInvalidKey
	}
	return nil
}

// encap is Encap of DHKEM (RFC 9180, Section 4.1) with an ephemeral key
// drawn from crypto/rand.
func (k *x448KEM) encap(pub []byte) (shared, enc []byte, err error) {
	var skE [x448Nsk]byte
	if _, err := rand.Read(skE[:]); err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE ephemeral key: %w", err)
	}
	defer clear(skE[:])
	return k.encapWith(skE[:], pub)
}

// encapWith is Encap with the given ephemeral private key skE (tests use it
// with the RFC 9180 vectors).
func (k *x448KEM) encapWith(skE, pub []byte) (shared, enc []byte, err error) {
	if len(pub) != x448.Size {
		return nil, nil, ErrInvalidKey
	}
	var sk, pkE, pkR, dh x448.Key
	copy(sk[:], skE)
	copy(pkR[:], pub)
	x448.KeyGen(&pkE, &sk)
	ok := x448.Shared(&dh, &sk, &pkR)
	clear(sk[:])
	if !ok {
		return nil, nil, ErrInvalidKey // low-order public key (Section 7.1.4)
	}
	enc = append([]byte(nil), pkE[:]...)
	shared = k.extractAndExpand(dh[:], enc, pub)
	clear(dh[:])
	return shared, enc, nil
}

// decap is Decap of DHKEM (RFC 9180, Section 4.1).
func (k *x448KEM) decap(priv, enc []byte) ([]byte, error) {
	if len(priv) != x448Nsk {
		return nil, ErrInvalidKey
	}
	if len(enc) != x448.Size {
		return nil, ErrDecrypt
	}
	var sk, pkR, pkE, dh x448.Key
	copy(sk[:], priv)
	copy(pkE[:], enc)
	x448.KeyGen(&pkR, &sk)
	ok := x448.Shared(&dh, &sk, &pkE)
	clear(sk[:])
	if !ok {
		return nil, ErrDecrypt // low-order KEM output
	}
	shared := k.extractAndExpand(dh[:], enc, pkR[:])
	clear(dh[:])
	return shared, nil
}

// seal is SealBase (RFC 9180, Section 6.1).
func (k *x448KEM) seal(pub, info, aad, plaintext []byte) (enc, ct []byte, err error) {
	return k.sealHashed(pub, k.infoHash(info), aad, plaintext)
}

// open is OpenBase (RFC 9180, Section 6.1).
func (k *x448KEM) open(priv, info, aad, enc, ct []byte) ([]byte, error) {
	shared, err := k.decap(priv, enc)
	if err != nil {
		return nil, err
	}
	return k.hs.openFirst(shared, k.hs.infoHash(info), aad, ct)
}

// exportSender sets up a base-mode sender context to pub and returns enc and
// Export(exporterContext, length) (RFC 9180, Sections 5.1 and 5.3).
func (k *x448KEM) exportSender(pub, info, exporterContext []byte, length int) (enc, secret []byte, err error) {
	shared, enc, err := k.encap(pub)
	if err != nil {
		return nil, nil, err
	}
	return enc, k.hs.export(shared, k.hs.infoHash(info), exporterContext, length), nil
}

// exportReceiver is the recipient side of exportSender.
func (k *x448KEM) exportReceiver(priv, enc, info, exporterContext []byte, length int) ([]byte, error) {
	shared, err := k.decap(priv, enc)
	if err != nil {
		return nil, err
	}
	return k.hs.export(shared, k.hs.infoHash(info), exporterContext, length), nil
}

func (k *x448KEM) extractAndExpand(dh, enc, pkR []byte) []byte {
	return extractAndExpand(kdfSHA512, x448KEMSuiteID, dh, enc, pkR, x448Nsecret)
}
