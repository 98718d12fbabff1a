package framing

import (
	"testing"

	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// FuzzUnprotect feeds arbitrary MLSMessages to a receiver: it must never
// panic, never accept anything that was not protected by a member, and
// fail only with typed errors. Seeds are real messages of every kind.
func FuzzUnprotect(f *testing.F) {
	g := newTestGroup(f, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	send := g.epoch()
	for _, ct := range contentTypes {
		f.Add(encodeMsg(f, &wire.MLSMessage{PrivateMessage: g.protectPrivate(send, 1, ct, 5)}))
		if ct != wire.ContentTypeApplication {
			pub, err := send.ProtectPublic(g.signed(g.content(0, ct), wire.WireFormatPublicMessage))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(encodeMsg(f, &wire.MLSMessage{PublicMessage: pub}))
		}
	}
	pub, err := send.ProtectPublic(g.signed(g.newMemberAdd(), wire.WireFormatPublicMessage))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(encodeMsg(f, &wire.MLSMessage{PublicMessage: pub}))

	f.Fuzz(func(t *testing.T, data []byte) {
		g.t = t
		msg, err := wire.UnmarshalMLSMessage(data)
		if err != nil {
			return
		}
		e := g.epoch()
		switch {
		case msg.PrivateMessage != nil:
			_, err = e.UnprotectPrivate(msg.PrivateMessage, g.members)
		case msg.PublicMessage != nil:
			_, err = e.UnprotectPublic(msg.PublicMessage, g.members)
		default:
			return
		}
		if err != nil && !typed(err) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}
