package suite

import (
	"crypto/rand"
	"fmt"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/cloudflare/circl/dh/x25519"
)

// x25519Public returns X25519(priv, 9), the public key of an X25519
// private key (RFC 7748, Section 6.1), by a fixed-base multiplication on
// the birationally equivalent Edwards curve and the map to Montgomery u
// (RFC 7748, Section 4.1). crypto/ecdh computes it with the generic
// Montgomery ladder, four to five times slower on this machine; a tree's
// node keys are derived from path secrets on every commit sent and
// received (RFC 9420, Section 7.4), so this is on the hot path.
//
// SetBytesWithClamping clamps exactly as decodeScalar25519 does (RFC 7748,
// Section 5) and then reduces modulo the group order l; the base point has
// order l, so the product is the same. TestX25519Public checks it against
// crypto/ecdh.
func x25519Public(priv []byte) ([]byte, error) {
	if len(priv) != 32 {
		return nil, ErrInvalidKey
	}
	k, err := edwards25519.NewScalar().SetBytesWithClamping(priv)
	if err != nil {
		return nil, ErrInvalidKey
	}
	defer k.Set(edwards25519.NewScalar())
	return new(edwards25519.Point).ScalarBaseMult(k).BytesMontgomery(), nil
}

// x25519Publics is x25519Public of each of privs, with one field inversion
// for all of them where each alone costs one (about 2 of a key's 14 µs on
// this project's machine): u = (Z+Y)/(Z-Y) for each product in extended
// coordinates (RFC 7748, Section 4.1), the denominators inverted together
// by Montgomery's trick (a running product inverted once, then unwound by
// multiplications). A receiver checks the key it derives at every level of
// a committer's path (RFC 9420, Section 7.5) and a committer derives one
// per level. Z-Y is zero only for the identity, which no clamped scalar
// reaches: it is a multiple of 8 below 2^255 < 8l, and a multiple of both
// 8 and the odd l is one of 8l. Were it zero, its u would be 0, as
// BytesMontgomery gives (the inverse of zero is zero), and the others
// unaffected. TestX25519Publics checks it against crypto/ecdh.
func x25519Publics(privs [][]byte) ([][]byte, error) {
	num := make([]field.Element, len(privs))
	den := make([]field.Element, len(privs))
	k := edwards25519.NewScalar()
	defer k.Set(edwards25519.NewScalar())
	var p edwards25519.Point
	for i, priv := range privs {
		if len(priv) != 32 {
			return nil, ErrInvalidKey
		}
		if _, err := k.SetBytesWithClamping(priv); err != nil {
			return nil, ErrInvalidKey
		}
		_, y, z, _ := p.ScalarBaseMult(k).ExtendedCoordinates()
		num[i].Add(z, y)
		den[i].Subtract(z, y)
	}
	// prefix[i] is the product of the denominators before i; a zero one
	// is left out of the product (its u is zero).
	var zero field.Element
	prefix := make([]field.Element, len(privs))
	var run field.Element
	run.One()
	for i := range den {
		prefix[i].Set(&run)
		if den[i].Equal(&zero) == 0 {
			run.Multiply(&run, &den[i])
		}
	}
	var inv, d, u field.Element
	inv.Invert(&run) // the inverse of the product of them all
	out := make([][]byte, len(privs))
	for i := len(den) - 1; i >= 0; i-- {
		if den[i].Equal(&zero) == 1 {
			out[i] = make([]byte, 32)
			continue
		}
		d.Multiply(&inv, &prefix[i]) // 1/den[i]
		inv.Multiply(&inv, &den[i])  // the inverse of the product before i
		out[i] = u.Multiply(&num[i], &d).Bytes()
	}
	return out, nil
}

// x25519DH is X25519(priv, pub) (RFC 7748, Section 5) by circl's ladder,
// which, unlike crypto/ecdh, does not compute priv's public key first. It
// reports false for an all-zero result (a low-order pub, RFC 9180,
// Section 7.1.4). TestX25519DH checks it against crypto/ecdh, edge points
// included.
func x25519DH(priv, pub []byte) ([]byte, bool) {
	var sk, pk, dh x25519.Key
	copy(sk[:], priv)
	copy(pk[:], pub)
	defer clear(sk[:])
	if !x25519.Shared(&dh, &sk, &pk) {
		return nil, false
	}
	return dh[:], true
}

// x25519Encap is the DH half of DHKEM(X25519)'s Encap (RFC 9180, Section
// 4.1): an ephemeral key from crypto/rand, its public key enc, and
// DH(skE, pkR).
func x25519Encap(pub []byte) (dh, enc []byte, err error) {
	if len(pub) != 32 {
		return nil, nil, ErrInvalidKey
	}
	var skE [32]byte
	if _, err := rand.Read(skE[:]); err != nil {
		return nil, nil, fmt.Errorf("mls: HPKE ephemeral key: %w", err)
	}
	defer clear(skE[:])
	enc, err = x25519Public(skE[:])
	if err != nil {
		return nil, nil, err
	}
	dh, ok := x25519DH(skE[:], pub)
	if !ok {
		return nil, nil, ErrInvalidKey // low-order public key
	}
	return dh, enc, nil
}

// x25519Decap is the DH half of Decap: DH(skR, enc) and pkRm.
func x25519Decap(priv, enc []byte) (dh, pub []byte, err error) {
	pub, err = x25519Public(priv)
	if err != nil {
		return nil, nil, err
	}
	if len(enc) != 32 {
		return nil, nil, ErrDecrypt
	}
	dh, ok := x25519DH(priv, enc)
	if !ok {
		return nil, nil, ErrDecrypt // low-order KEM output
	}
	return dh, pub, nil
}
