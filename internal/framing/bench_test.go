package framing

import (
	"crypto/rand"
	"testing"

	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// BenchmarkProtectPrivate measures sending a 100-byte application message
// as a PrivateMessage with suite 1, encoded as an MLSMessage as a group
// sends it (ProtectPrivateMessage): signing the FramedContent and
// encrypting it (secret tree step, content and sender data AEAD), and the
// encryption alone for an already signed content.
func BenchmarkProtectPrivate(b *testing.B) {
	g := newTestGroup(b, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	content := g.content(1, wire.ContentTypeApplication)
	if len(content.ApplicationData) != 100 {
		b.Fatal("want a 100-byte message")
	}
	b.Run("sign+encrypt", func(b *testing.B) {
		e := g.epoch()
		b.SetBytes(100)
		b.ReportAllocs()
		for b.Loop() {
			ac, err := Sign(g.signers[1], wire.WireFormatPrivateMessage, content, g.ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.ProtectPrivateMessage(ac, noPadding, rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encrypt", func(b *testing.B) {
		e := g.epoch()
		ac := g.signed(content, wire.WireFormatPrivateMessage)
		b.SetBytes(100)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.ProtectPrivateMessage(ac, noPadding, rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func noPadding(int) int { return 0 }

// BenchmarkUnprotectPrivate measures receiving a 100-byte application
// message as a PrivateMessage with suite 1, in order: sender data
// decryption, secret tree step, content decryption, decoding and signature
// verification.
func BenchmarkUnprotectPrivate(b *testing.B) {
	g := newTestGroup(b, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	send, recv := g.epoch(), g.epoch()
	ac := g.signed(g.content(1, wire.ContentTypeApplication), wire.WireFormatPrivateMessage)
	msgs := make([]*wire.PrivateMessage, b.N)
	for i := range msgs {
		pm, err := send.ProtectPrivate(ac, 0, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = pm
	}
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := recv.UnprotectPrivate(msgs[i], g.members); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnprotectPublic measures receiving a member's proposal as a
// PublicMessage with suite 1: membership tag and signature.
func BenchmarkUnprotectPublic(b *testing.B) {
	g := newTestGroup(b, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	e := g.epoch()
	pub, err := e.ProtectPublic(g.signed(g.content(1, wire.ContentTypeProposal), wire.WireFormatPublicMessage))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.UnprotectPublic(pub, g.members); err != nil {
			b.Fatal(err)
		}
	}
}
