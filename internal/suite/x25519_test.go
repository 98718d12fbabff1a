package suite

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"testing"
)

// TestX25519Public: the fixed-base derivation gives crypto/ecdh's public
// key for random private keys and for the edge scalars (all zeros, all
// ones, the clamped bits set and cleared), and refuses other lengths.
func TestX25519Public(t *testing.T) {
	keys := [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32)}
	edge := make([]byte, 32)
	edge[0], edge[31] = 7, 0x80
	keys = append(keys, edge)
	for range 3000 {
		k := make([]byte, 32)
		rand.Read(k)
		keys = append(keys, k)
	}
	for i, k := range keys {
		want, err := ecdh.X25519().NewPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := x25519Public(k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.PublicKey().Bytes()) {
			t.Fatalf("key %d: %x, crypto/ecdh %x", i, got, want.PublicKey().Bytes())
		}
	}
	for _, n := range []int{0, 31, 33, 56} {
		if _, err := x25519Public(make([]byte, n)); err != ErrInvalidKey {
			t.Errorf("%d-byte key: %v", n, err)
		}
	}
}

func BenchmarkX25519Public(b *testing.B) {
	k := make([]byte, 32)
	rand.Read(k)
	b.Run("edwards25519", func(b *testing.B) {
		for b.Loop() {
			x25519Public(k)
		}
	})
	b.Run("crypto-ecdh", func(b *testing.B) {
		for b.Loop() {
			p, _ := ecdh.X25519().NewPrivateKey(k)
			p.PublicKey().Bytes()
		}
	})
}
