package framing

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// TestNewWelcomeMessage: the Welcome message whose GroupInfo is sealed in
// place (up to inPlaceMembers new members) and the one assembled by copy
// (more) are both exactly the canonical encoding of the Welcome they
// decode to, every new member opens its own GroupSecrets, and the
// GroupInfo decrypts to the bytes given, for every suite.
func TestNewWelcomeMessage(t *testing.T) {
	for _, id := range suite.Supported() {
		t.Run(id.String(), func(t *testing.T) {
			g := newTestGroup(t, id)
			welcomeSecret := keyschedule.Secret(bytes.Repeat([]byte{0x42}, g.s.HashSize()))
			gi := g.groupInfo()
			giBytes, err := codec.Marshal(gi)
			if err != nil {
				t.Fatal(err)
			}
			// A large GroupInfo, as with a ratchet tree: the in-place
			// path must not depend on its size.
			big := append(bytes.Clone(giBytes), make([]byte, 70_000)...)
			for _, n := range []int{1, 3, inPlaceMembers, inPlaceMembers + 1} {
				for _, pt := range [][]byte{giBytes, big} {
					var js []joiner
					var ms []NewMember
					var secrets []*wire.GroupSecrets
					for i := range n {
						j := g.newJoiner(fmt.Sprint("j", i))
						gs := &wire.GroupSecrets{JoinerSecret: bytes.Repeat([]byte{byte(i)}, g.s.HashSize()),
							PathSecret: &wire.PathSecret{PathSecret: []byte{byte(i), 1, 2}}}
						js, secrets = append(js, j), append(secrets, gs)
						ms = append(ms, NewMember{KeyPackage: j.kp, Secrets: gs})
					}
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					msg, err := NewWelcomeMessage(g.s, welcomeSecret, pt, ms)
					if err != nil {
						t.Fatal(err)
					}
					runtime.ReadMemStats(&after)
					if len(pt) == len(big) && n == 1 {
						// In place, the large GroupInfo costs one buffer
						// less than by copy.
						inPlace := after.TotalAlloc - before.TotalAlloc
						runtime.ReadMemStats(&before)
						w, err := NewWelcomeEncoded(g.s, welcomeSecret, pt, ms)
						if err != nil {
							t.Fatal(err)
						}
						if _, err := marshalWelcomeMessage(w); err != nil {
							t.Fatal(err)
						}
						runtime.ReadMemStats(&after)
						if byCopy := after.TotalAlloc - before.TotalAlloc; inPlace+uint64(len(big))*9/10 > byCopy {
							t.Fatalf("%d bytes allocated in place, %d by copy, for a %d-byte GroupInfo: not sealed in place", inPlace, byCopy, len(big))
						}
					}
					m, err := wire.UnmarshalMLSMessage(msg)
					if err != nil || m.WireFormat != wire.WireFormatWelcome || m.Welcome == nil {
						t.Fatalf("%d members: not a Welcome message: %v", n, err)
					}
					again, err := codec.Marshal(m)
					if err != nil || !bytes.Equal(again, msg) {
						t.Fatalf("%d members: the message is not the encoding of the Welcome it holds", n)
					}
					w := m.Welcome
					if len(w.Secrets) != n {
						t.Fatalf("%d members: %d entries", n, len(w.Secrets))
					}
					for i, j := range js {
						gs, err := OpenGroupSecrets(g.s, w, j.kp, j.initPriv)
						if err != nil {
							t.Fatalf("%d members, member %d: %v", n, i, err)
						}
						a, _ := codec.Marshal(gs)
						b, _ := codec.Marshal(secrets[i])
						if !bytes.Equal(a, b) {
							t.Fatalf("%d members, member %d: group secrets differ", n, i)
						}
					}
					key, nonce := keyschedule.WelcomeKeyNonce(g.s, welcomeSecret)
					plain, err := g.s.Open(key, nonce, nil, w.EncryptedGroupInfo)
					if err != nil || !bytes.Equal(plain, pt) {
						t.Fatalf("%d members: GroupInfo does not decrypt to what was sealed: %v", n, err)
					}
				}
			}
		})
	}
}
