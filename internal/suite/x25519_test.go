package suite

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
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

// TestX25519Publics: the keys derived together, sharing one inversion, are
// crypto/ecdh's, one by one, for batches of every size from 0 to 40 mixing
// random and edge private keys; a key of another length fails the batch.
func TestX25519Publics(t *testing.T) {
	edge := [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), append([]byte{7}, append(make([]byte, 30), 0x80)...)}
	for n := range 41 {
		privs := make([][]byte, n)
		for i := range privs {
			if i%7 == 3 {
				privs[i] = edge[i%len(edge)]
				continue
			}
			privs[i] = make([]byte, 32)
			rand.Read(privs[i])
		}
		got, err := x25519Publics(privs)
		if err != nil || len(got) != n {
			t.Fatalf("batch of %d: %d keys, %v", n, len(got), err)
		}
		for i, k := range privs {
			want, err := ecdh.X25519().NewPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[i], want.PublicKey().Bytes()) {
				t.Fatalf("batch of %d, key %d: %x, crypto/ecdh %x", n, i, got[i], want.PublicKey().Bytes())
			}
		}
	}
	for _, bad := range []int{0, 31, 33} {
		privs := [][]byte{make([]byte, 32), make([]byte, bad), make([]byte, 32)}
		if _, err := x25519Publics(privs); err != ErrInvalidKey {
			t.Errorf("batch with a %d-byte key: %v", bad, err)
		}
	}
}

// TestDeriveKeyPairs: for every suite, deriving keys together gives what
// DeriveKeyPair gives for each.
func TestDeriveKeyPairs(t *testing.T) {
	for _, id := range Supported() {
		s, err := Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		ikms := make([][]byte, 12)
		for i := range ikms {
			ikms[i] = make([]byte, s.HashSize())
			rand.Read(ikms[i])
		}
		privs, pubs, err := s.DeriveKeyPairs(ikms)
		if err != nil {
			t.Fatalf("suite %d: %v", id, err)
		}
		for i, ikm := range ikms {
			priv, pub, err := s.DeriveKeyPair(ikm)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(priv, privs[i]) || !bytes.Equal(pub, pubs[i]) {
				t.Fatalf("suite %d, key %d: DeriveKeyPairs differs from DeriveKeyPair", id, i)
			}
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
	ten := make([][]byte, 10)
	for i := range ten {
		ten[i] = k
	}
	b.Run("edwards25519-batch-of-10", func(b *testing.B) {
		for b.Loop() {
			x25519Publics(ten)
		}
	})
	b.Run("crypto-ecdh", func(b *testing.B) {
		for b.Loop() {
			p, _ := ecdh.X25519().NewPrivateKey(k)
			p.PublicKey().Bytes()
		}
	})
}

// x25519EdgePoints are u-coordinates where ladders may disagree: the
// low-order points, p-1, p and p+1 (non-canonical), and the same with the
// top bit set, which RFC 7748, Section 5 says to ignore.
var x25519EdgePoints = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
	"4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
	"d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"daffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"dbffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"0900000000000000000000000000000000000000000000000000000000000080",
}

// TestX25519DH: circl's ladder agrees with crypto/ecdh on the shared
// secret, and on refusing an all-zero one, for random points (with and
// without the top bit) and for every edge point.
func TestX25519DH(t *testing.T) {
	var pubs [][]byte
	for _, h := range x25519EdgePoints {
		b, _ := hex.DecodeString(h)
		pubs = append(pubs, b)
	}
	for i := range 2000 {
		u := make([]byte, 32)
		rand.Read(u)
		if i%2 == 0 {
			u[31] |= 0x80
		}
		pubs = append(pubs, u)
	}
	for i, u := range pubs {
		k := make([]byte, 32)
		rand.Read(k)
		sk, err := ecdh.X25519().NewPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pk, err := ecdh.X25519().NewPublicKey(u)
		if err != nil {
			t.Fatal(err)
		}
		want, werr := sk.ECDH(pk)
		got, ok := x25519DH(k, u)
		if ok != (werr == nil) || (ok && !bytes.Equal(got, want)) {
			t.Fatalf("point %d (%x): circl ok=%v %x, crypto/ecdh err=%v %x", i, u, ok, got, werr, want)
		}
	}
}

// TestX25519HPKEMatchesCryptoHPKE: for the X25519 suites, what this
// package seals crypto/hpke opens and the reverse, the exporters agree, and
// a low-order key or KEM output fails the same way on both.
func TestX25519HPKEMatchesCryptoHPKE(t *testing.T) {
	for _, id := range []ID{MLS128DHKEMX25519AES128GCMSHA256Ed25519, MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519} {
		s, _ := Lookup(id)
		fast := s.kem.(*stdKEM)
		if fast.dh == nil || !fast.dh.x25519 {
			t.Fatalf("%v: not on the x25519.go path", s)
		}
		std := newStdDHKEM(kemX25519, fast.aead) // crypto/hpke throughout
		for range 50 {
			ikm := make([]byte, 32)
			rand.Read(ikm)
			priv, pub, err := fast.deriveKeyPair(ikm)
			if err != nil {
				t.Fatal(err)
			}
			info, aad, pt := []byte("info"), []byte("aad"), []byte("plaintext")
			for dir, pair := range [][2]kem{{fast, std}, {std, fast}} {
				enc, ct, err := pair[0].seal(pub, info, aad, pt)
				if err != nil {
					t.Fatal(err)
				}
				got, err := pair[1].open(priv, info, aad, enc, ct)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("%v direction %d: open: %v", s, dir, err)
				}
				if _, err := pair[1].open(priv, []byte("other"), aad, enc, ct); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("%v direction %d: opened under another info: %v", s, dir, err)
				}
				enc, sec, err := pair[0].exportSender(pub, info, []byte("ctx"), 32)
				if err != nil {
					t.Fatal(err)
				}
				sec2, err := pair[1].exportReceiver(priv, enc, info, []byte("ctx"), 32)
				if err != nil || !bytes.Equal(sec, sec2) {
					t.Fatalf("%v direction %d: exporters differ: %v", s, dir, err)
				}
			}
		}
		low := make([]byte, 32) // u = 0: low order
		for _, k := range []kem{fast, std} {
			if _, _, err := k.seal(low, nil, nil, []byte("x")); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("%v: seal to a low-order key: %v", s, err)
			}
			priv, _, _ := k.deriveKeyPair(make([]byte, 32))
			if _, err := k.open(priv, nil, nil, low, make([]byte, 32)); !errors.Is(err, ErrDecrypt) {
				t.Errorf("%v: open of a low-order KEM output: %v", s, err)
			}
			if _, err := k.open(priv, nil, nil, low[:31], make([]byte, 32)); !errors.Is(err, ErrDecrypt) {
				t.Errorf("%v: open of a short KEM output: %v", s, err)
			}
		}
	}
}

func BenchmarkX25519HPKE(b *testing.B) {
	s, _ := Lookup(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	fast := s.kem.(*stdKEM)
	std := newStdDHKEM(kemX25519, fast.aead)
	priv, pub, _ := fast.deriveKeyPair(make([]byte, 32))
	for _, k := range []struct {
		name string
		k    kem
	}{{"x25519.go", fast}, {"crypto-hpke", std}} {
		enc, ct, _ := k.k.seal(pub, nil, nil, make([]byte, 64))
		b.Run(k.name+"/seal", func(b *testing.B) {
			for b.Loop() {
				k.k.seal(pub, nil, nil, make([]byte, 64))
			}
		})
		b.Run(k.name+"/open", func(b *testing.B) {
			for b.Loop() {
				k.k.open(priv, nil, nil, enc, ct)
			}
		})
	}
}
