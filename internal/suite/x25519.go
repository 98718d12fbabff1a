package suite

import "filippo.io/edwards25519"

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
