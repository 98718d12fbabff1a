package suite

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"testing/cryptotest"
)

// TestLabeledSealer: the sealer's ciphertexts are EncryptWithLabel's. With
// the same randomness they are byte for byte the same as crypto/hpke's
// (DHKEM suites) or the X448 code's, and DecryptWithLabel opens them under
// that label and context only.
func TestLabeledSealer(t *testing.T) {
	for _, id := range Supported() {
		s, _ := Lookup(id)
		t.Run(s.String(), func(t *testing.T) {
			ikm := make([]byte, s.kem.nsk())
			rand.Read(ikm)
			priv, pub, err := s.DeriveKeyPair(ikm)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{0, 1, 1000, 70000} {
				context := bytes.Repeat([]byte{byte(n)}, n)
				ls, err := s.NewLabeledSealer("Welcome", context)
				if err != nil {
					t.Fatal(err)
				}
				_, pq := s.kem.(*stdKEM)
				pq = pq && s.kem.(*stdKEM).dh == nil
				if (ls.h == nil) != pq {
					t.Fatalf("hashed path used: %v, want %v", ls.h != nil, !pq)
				}
				pt := []byte("group secrets")

				cryptotest.SetGlobalRandom(t, uint64(n)+1)
				encA, ctA, err := s.EncryptWithLabel(pub, "Welcome", context, pt)
				if err != nil {
					t.Fatal(err)
				}
				cryptotest.SetGlobalRandom(t, uint64(n)+1)
				encB, ctB, err := ls.Seal(pub, pt)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(encA, encB) || !bytes.Equal(ctA, ctB) {
					t.Fatalf("n=%d: sealer and EncryptWithLabel differ with the same randomness", n)
				}
				got, err := s.DecryptWithLabel(priv, "Welcome", context, encB, ctB)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("n=%d: open: %v", n, err)
				}
				if _, err := s.DecryptWithLabel(priv, "Welcome", append(context, 0), encB, ctB); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("n=%d: another context opened it: %v", n, err)
				}
				if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", context, encB, ctB); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("n=%d: another label opened it: %v", n, err)
				}
			}
		})
	}
}

// TestLabeledSealerBadKeys: a key of the wrong length or of low order is
// ErrInvalidKey on the sealer's path as on EncryptWithLabel's.
func TestLabeledSealerBadKeys(t *testing.T) {
	for _, id := range []ID{MLS128DHKEMX25519AES128GCMSHA256Ed25519, MLS128DHKEMP256AES128GCMSHA256P256, MLS256DHKEMX448AES256GCMSHA512Ed448} {
		s, _ := Lookup(id)
		ls, err := s.NewLabeledSealer("Welcome", []byte("ctx"))
		if err != nil {
			t.Fatal(err)
		}
		zero := make([]byte, len(mustPub(t, s)))
		for name, pub := range map[string][]byte{"short": {1, 2, 3}, "zero": zero} {
			_, _, errA := s.EncryptWithLabel(pub, "Welcome", []byte("ctx"), []byte("x"))
			_, _, errB := ls.Seal(pub, []byte("x"))
			if !errors.Is(errB, ErrInvalidKey) || !errors.Is(errA, ErrInvalidKey) {
				t.Errorf("%s %s: sealer %v, EncryptWithLabel %v", s, name, errB, errA)
			}
		}
	}
}

func mustPub(t *testing.T, s *Suite) []byte {
	t.Helper()
	_, pub, err := s.GenerateKEMKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
