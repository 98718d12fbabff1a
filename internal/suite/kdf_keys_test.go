package suite

import (
	"bytes"
	"testing"
)

// TestDeriveTreeKeys: the key, nonce and next secret derived together, the
// HMAC key set up once, are those DeriveTreeSecret and ExpandWithLabel
// derive one at a time, in every suite; and a state used for them and
// returned to the pool computes the next HMAC under another key correctly.
func TestDeriveTreeKeys(t *testing.T) {
	for _, id := range Supported() {
		s, err := Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		secret := bytes.Repeat([]byte{byte(id)}, s.HashSize())
		for _, gen := range []uint32{0, 1, 255, 1 << 31, 1<<32 - 1} {
			key, nonce, next := s.DeriveTreeKeys(secret, gen, true)
			if !bytes.Equal(key, s.DeriveTreeSecret(secret, "key", gen, s.KeySize())) ||
				!bytes.Equal(nonce, s.DeriveTreeSecret(secret, "nonce", gen, s.NonceSize())) ||
				!bytes.Equal(next, s.DeriveTreeSecret(secret, "secret", gen, s.HashSize())) {
				t.Fatalf("%v generation %d: derived together differs from one at a time", id, gen)
			}
			k2, n2, none := s.DeriveTreeKeys(secret, gen, false)
			if !bytes.Equal(k2, key) || !bytes.Equal(n2, nonce) || none != nil {
				t.Fatalf("%v generation %d: without the next secret", id, gen)
			}
			secret = next
		}
		for _, sample := range [][]byte{nil, {1, 2, 3}, bytes.Repeat([]byte{7}, 64)} {
			key, nonce := s.ExpandKeyNonce(secret, sample)
			if !bytes.Equal(key, s.ExpandWithLabel(secret, "key", sample, s.KeySize())) ||
				!bytes.Equal(nonce, s.ExpandWithLabel(secret, "nonce", sample, s.NonceSize())) {
				t.Fatalf("%v: ExpandKeyNonce differs from ExpandWithLabel", id)
			}
		}
		// A key longer than the hash's block is hashed first (RFC 2104).
		long := bytes.Repeat([]byte{9}, 200)
		key, _ := s.ExpandKeyNonce(long, nil)
		if !bytes.Equal(key, s.ExpandWithLabel(long, "key", nil, s.KeySize())) {
			t.Fatalf("%v: long key", id)
		}
	}
}
