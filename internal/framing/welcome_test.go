package framing

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

type joiner struct {
	kp       *wire.KeyPackage
	initPriv []byte
}

// newJoiner makes a KeyPackage with a real init key and decodes it, as a
// committer would receive it.
func (g *testGroup) newJoiner(name string) joiner {
	g.t.Helper()
	priv, pub, err := g.s.GenerateKEMKey(g.rand)
	if err != nil {
		g.t.Fatal(err)
	}
	kp := g.newMemberAdd().Proposal.Add.KeyPackage
	kp.InitKey = pub
	kp.LeafNode.Credential.Identity = []byte(name)
	b, err := codec.Marshal(&kp)
	if err != nil {
		g.t.Fatal(err)
	}
	dec, err := wire.UnmarshalKeyPackage(b)
	if err != nil {
		g.t.Fatal(err)
	}
	return joiner{kp: dec, initPriv: priv}
}

func (g *testGroup) groupInfo() *wire.GroupInfo {
	g.t.Helper()
	gi := &wire.GroupInfo{GroupContext: *g.ctx, ConfirmationTag: bytes.Repeat([]byte{7}, g.s.HashSize()), Signer: 0}
	if err := SignGroupInfo(g.signers[0], gi); err != nil {
		g.t.Fatal(err)
	}
	return gi
}

func TestWelcomeRoundTrip(t *testing.T) {
	for _, id := range suite.Supported() {
		t.Run(id.String(), func(t *testing.T) {
			g := newTestGroup(t, id)
			welcomeSecret := keyschedule.Secret(bytes.Repeat([]byte{0x42}, g.s.HashSize()))
			alice, bob := g.newJoiner("alice"), g.newJoiner("bob")
			secrets := map[string]*wire.GroupSecrets{
				"alice": {JoinerSecret: []byte("alice's joiner secret............")},
				"bob": {JoinerSecret: []byte("bob's joiner secret.............."),
					PathSecret: &wire.PathSecret{PathSecret: []byte("path")}},
			}
			gi := g.groupInfo()
			w, err := NewWelcome(g.s, welcomeSecret, gi, []NewMember{
				{KeyPackage: alice.kp, Secrets: secrets["alice"]},
				{KeyPackage: bob.kp, Secrets: secrets["bob"]},
			})
			if err != nil {
				t.Fatal(err)
			}
			enc, err := codec.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			w, err = wire.UnmarshalWelcome(enc)
			if err != nil {
				t.Fatal(err)
			}
			for name, j := range map[string]joiner{"alice": alice, "bob": bob} {
				gs, err := OpenGroupSecrets(g.s, w, j.kp, j.initPriv)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				want, _ := codec.Marshal(secrets[name])
				got, _ := codec.Marshal(gs)
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: group secrets differ", name)
				}
				gotGI, err := DecryptGroupInfo(g.s, welcomeSecret, w.EncryptedGroupInfo)
				if err != nil {
					t.Fatal(err)
				}
				if err := VerifyGroupInfo(g.s, g.pubs[0], gotGI); err != nil {
					t.Fatal(err)
				}
				wantGI, _ := codec.Marshal(gi)
				if !bytes.Equal(gotGI.Raw(), wantGI) {
					t.Fatal("GroupInfo differs")
				}
			}
			// Alice's init key does not open Bob's entry.
			egs, err := FindGroupSecrets(g.s, w, bob.kp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecryptGroupSecrets(g.s, alice.initPriv, w.EncryptedGroupInfo, egs.EncryptedGroupSecrets); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("wrong init key: got %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestWelcomeFailures(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	welcomeSecret := keyschedule.Secret(bytes.Repeat([]byte{0x42}, g.s.HashSize()))
	alice, carol := g.newJoiner("alice"), g.newJoiner("carol")
	gi := g.groupInfo()
	w, err := NewWelcome(g.s, welcomeSecret, gi, []NewMember{
		{KeyPackage: alice.kp, Secrets: &wire.GroupSecrets{JoinerSecret: []byte("js")}},
	})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := OpenGroupSecrets(g.s, w, carol.kp, carol.initPriv); !errors.Is(err, ErrNoGroupSecrets) {
		t.Errorf("not for us: got %v, want ErrNoGroupSecrets", err)
	}
	s2, _ := suite.Lookup(suite.MLS128DHKEMP256AES128GCMSHA256P256)
	if _, err := OpenGroupSecrets(s2, w, alice.kp, alice.initPriv); !errors.Is(err, ErrCipherSuiteMismatch) {
		t.Errorf("other suite: got %v, want ErrCipherSuiteMismatch", err)
	}
	// encrypted_group_info is the HPKE context of the group secrets: a
	// Welcome whose group info was swapped does not open.
	swapped := *w
	swapped.EncryptedGroupInfo = bytes.Clone(w.EncryptedGroupInfo)
	swapped.EncryptedGroupInfo[0] ^= 1
	if _, err := OpenGroupSecrets(g.s, &swapped, alice.kp, alice.initPriv); !errors.Is(err, ErrDecrypt) {
		t.Errorf("swapped group info: got %v, want ErrDecrypt", err)
	}
	if _, err := DecryptGroupInfo(g.s, welcomeSecret, swapped.EncryptedGroupInfo); !errors.Is(err, ErrDecrypt) {
		t.Errorf("tampered group info: got %v, want ErrDecrypt", err)
	}
	wrongSecret := keyschedule.Secret(bytes.Repeat([]byte{0x43}, g.s.HashSize()))
	if _, err := DecryptGroupInfo(g.s, wrongSecret, w.EncryptedGroupInfo); !errors.Is(err, ErrDecrypt) {
		t.Errorf("wrong welcome secret: got %v, want ErrDecrypt", err)
	}
	// Every bit of the encrypted group secrets matters.
	egs := w.Secrets[0].EncryptedGroupSecrets
	for _, field := range [][]byte{egs.KEMOutput, egs.Ciphertext} {
		for i := range len(field) * 8 {
			field[i/8] ^= 1 << (i % 8)
			_, err := DecryptGroupSecrets(g.s, alice.initPriv, w.EncryptedGroupInfo, egs)
			field[i/8] ^= 1 << (i % 8)
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, suite.ErrInvalidKey) {
				t.Fatalf("bit %d flipped: got %v", i, err)
			}
		}
	}
	// GroupInfo signature.
	if err := VerifyGroupInfo(g.s, g.pubs[1], gi); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("wrong signer: got %v, want ErrInvalidSignature", err)
	}
	tampered := *gi
	tampered.Signer = 1
	if err := VerifyGroupInfo(g.s, g.pubs[0], &tampered); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("tampered GroupInfo: got %v, want ErrInvalidSignature", err)
	}
	// A GroupInfo of another suite inside the Welcome is refused.
	other := *gi
	other.GroupContext.CipherSuite = wire.CipherSuite(suite.MLS128DHKEMP256AES128GCMSHA256P256)
	egi, err := EncryptGroupInfo(g.s, welcomeSecret, &other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecryptGroupInfo(g.s, welcomeSecret, egi); !errors.Is(err, ErrCipherSuiteMismatch) {
		t.Errorf("GroupInfo of another suite: got %v, want ErrCipherSuiteMismatch", err)
	}
}

// KeyPackageRef hashes the KeyPackage as received, not a re-encoding.
func TestKeyPackageRef(t *testing.T) {
	g := newTestGroup(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	j := g.newJoiner("alice")
	ref, err := KeyPackageRef(g.s, j.kp)
	if err != nil {
		t.Fatal(err)
	}
	if want := g.s.RefHash("MLS 1.0 KeyPackage Reference", j.kp.Raw()); !bytes.Equal(ref, want) {
		t.Fatal("ref is not RefHash over the received bytes")
	}
	// Changing a field after decoding does not change the ref (Raw wins).
	j.kp.InitKey = []byte("changed")
	if ref2, _ := KeyPackageRef(g.s, j.kp); !bytes.Equal(ref, ref2) {
		t.Fatal("ref computed from a re-encoding")
	}
}

// plainSigner hides a signer's SignSignContent, so SignGroupInfoMessage
// takes its other path.
type plainSigner struct{ s suite.Signer }

func (p plainSigner) PublicKey() []byte { return p.s.PublicKey() }
func (p plainSigner) SignWithLabel(label string, content []byte) ([]byte, error) {
	return p.s.SignWithLabel(label, content)
}

// TestSignGroupInfoMessage: the GroupInfo signed in place, with a large
// extension standing for the tree, encodes exactly as codec.Marshal
// encodes it (as itself and as an MLSMessage), and its signature verifies,
// with the in-place signer and without it. SignGroupInfoMessageIn gives the
// same bytes in a reused buffer holding an earlier content (too small for
// the next, large enough for the one after), with msg at the end of the
// buffer it reports.
func TestSignGroupInfoMessage(t *testing.T) {
	for _, id := range suite.Supported() {
		t.Run(id.String(), func(t *testing.T) {
			g := newTestGroup(t, id)
			reused := []byte{}
			for _, signer := range []suite.Signer{g.signers[0], plainSigner{g.signers[0]}} {
				for _, n := range []int{0, 100, 70000, 69000} {
					gi := &wire.GroupInfo{GroupContext: *g.ctx, ConfirmationTag: bytes.Repeat([]byte{7}, g.s.HashSize()), Signer: 0,
						Extensions: []wire.Extension{{ExtensionType: wire.ExtensionTypeRatchetTree, ExtensionData: bytes.Repeat([]byte{1}, n)}}}
					msg, giBytes, err := SignGroupInfoMessage(signer, gi)
					if err != nil {
						t.Fatal(err)
					}
					want, err := codec.Marshal(gi)
					if err != nil {
						t.Fatal(err)
					}
					wantMsg, err := codec.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatGroupInfo, GroupInfo: gi})
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(giBytes, want) || !bytes.Equal(msg, wantMsg) {
						t.Fatalf("n=%d %T: in-place encoding differs from codec.Marshal", n, signer)
					}
					dirty := reused[:cap(reused)]
					for i := range dirty {
						dirty[i] = 0xa5
					}
					msg2, giBytes2, used, err := SignGroupInfoMessageIn(reused, signer, gi)
					if err != nil {
						t.Fatal(err)
					}
					// ECDSA signs anew with fresh randomness: compare
					// with the GroupInfo as now signed.
					want2, err := codec.Marshal(gi)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(giBytes2, want2) || !bytes.Equal(msg2[len(msg2)-len(want2):], want2) ||
						!bytes.Equal(msg2[:len(msg2)-len(want2)], wantMsg[:len(wantMsg)-len(want)]) {
						t.Fatalf("n=%d %T: encoding in a reused buffer differs", n, signer)
					}
					if err := VerifyGroupInfo(g.s, g.signers[0].PublicKey(), gi); err != nil {
						t.Fatalf("n=%d %T, reused buffer: %v", n, signer, err)
					}
					if len(used) < len(msg2) || &used[len(used)-len(msg2)] != &msg2[0] {
						t.Fatalf("n=%d: msg is not the end of the buffer used", n)
					}
					reused = used[:0]
					if err := VerifyGroupInfo(g.s, g.signers[0].PublicKey(), gi); err != nil {
						t.Fatalf("n=%d %T: %v", n, signer, err)
					}
				}
			}
		})
	}
}
