package suite_test

import (
	"testing"

	"github.com/mlskit/mlskit/internal/suite"
)

// benchSuites: the default suite, X448/Ed448, P-256 and one post-quantum
// suite (X-Wing).
var benchSuites = []suite.ID{
	suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519,
	suite.MLS128DHKEMP256AES128GCMSHA256P256,
	suite.MLS256DHKEMX448AES256GCMSHA512Ed448,
	suite.MLS128MLKEM768X25519AES128GCMSHA256Ed25519,
}

func benchEach(b *testing.B, f func(b *testing.B, s *suite.Suite)) {
	for _, id := range benchSuites {
		s, _ := suite.Lookup(id)
		b.Run(id.String(), func(b *testing.B) { f(b, s) })
	}
}

func BenchmarkExpandWithLabel(b *testing.B) {
	s, _ := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	secret := make([]byte, s.HashSize())
	ctx := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		s.ExpandWithLabel(secret, "ExpandWithLabel", ctx, 16)
	}
}

func BenchmarkDeriveTreeSecret(b *testing.B) {
	s, _ := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	secret := make([]byte, s.HashSize())
	b.ReportAllocs()
	var g uint32
	for b.Loop() {
		s.DeriveTreeSecret(secret, "key", g, s.KeySize())
		g++
	}
}

func BenchmarkDeriveKeyPair(b *testing.B) {
	benchEach(b, func(b *testing.B, s *suite.Suite) {
		ikm := make([]byte, s.HashSize())
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.DeriveKeyPair(ikm); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncryptWithLabel(b *testing.B) {
	benchEach(b, func(b *testing.B, s *suite.Suite) {
		_, pub, _ := s.GenerateKEMKey(seeded(1))
		pt := make([]byte, 3*s.HashSize()) // about a GroupSecrets
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.EncryptWithLabel(pub, "Welcome", nil, pt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecryptWithLabel(b *testing.B) {
	benchEach(b, func(b *testing.B, s *suite.Suite) {
		priv, pub, _ := s.GenerateKEMKey(seeded(1))
		pt := make([]byte, 3*s.HashSize())
		kemOut, ct, _ := s.EncryptWithLabel(pub, "Welcome", nil, pt)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.DecryptWithLabel(priv, "Welcome", nil, kemOut, ct); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSignWithLabel(b *testing.B) {
	benchEach(b, func(b *testing.B, s *suite.Suite) {
		priv, _, _ := s.GenerateSignatureKey(seeded(1))
		content := make([]byte, 256)
		b.Run("priv", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.SignWithLabel(priv, "LeafNodeTBS", content); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Signer", func(b *testing.B) {
			sg, _ := s.NewSigner(priv)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sg.SignWithLabel("LeafNodeTBS", content); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkVerifyWithLabel(b *testing.B) {
	benchEach(b, func(b *testing.B, s *suite.Suite) {
		priv, pub, _ := s.GenerateSignatureKey(seeded(1))
		content := make([]byte, 256)
		sig, _ := s.SignWithLabel(priv, "LeafNodeTBS", content)
		b.ReportAllocs()
		for b.Loop() {
			if err := s.VerifyWithLabel(pub, "LeafNodeTBS", content, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}
