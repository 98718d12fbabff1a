package mlsmsg

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/suite"
)

func newSigner(t testing.TB, id uint16) suite.Signer {
	t.Helper()
	s, err := suite.Lookup(suite.ID(id))
	if err != nil {
		t.Fatal(err)
	}
	priv, _, err := s.GenerateSignatureKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := s.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func TestKeyPackageRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, id := range []uint16{1, 2, 3, 5, 7} {
		sg := newSigner(t, id)
		cred := BasicCredential([]byte("alice"))
		msg, err := BuildKeyPackage(id, sg, cred, KeyPackageOptions{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), LastResort: true})
		if err != nil {
			t.Fatal(err)
		}
		kp, err := ParseKeyPackage(msg)
		if err != nil {
			t.Fatalf("suite %d: %v", id, err)
		}
		if kp.CipherSuite != id || !bytes.Equal(kp.SignatureKey, sg.PublicKey()) || !kp.LastResort ||
			kp.Credential.Type != CredentialBasic || string(kp.Credential.Identity) != "alice" {
			t.Fatalf("suite %d: parsed %+v", id, kp)
		}
		if err := kp.Verify(now, 30*24*time.Hour); err != nil {
			t.Fatalf("suite %d: %v", id, err)
		}
		if err := kp.Verify(now, time.Hour); !errors.Is(err, ErrLifetime) {
			t.Fatalf("lifetime policy: %v", err)
		}
		if err := kp.Verify(now.Add(48*time.Hour), 0); !errors.Is(err, ErrLifetime) {
			t.Fatalf("expired: %v", err)
		}
		// Flip one bit of the signature key inside the TBS: both signatures fail.
		bad := append([]byte(nil), msg...)
		bad[len(bad)-5] ^= 1
		if kp2, err := ParseKeyPackage(bad); err == nil {
			if err := kp2.Verify(now, 0); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("tampered signature verified: %v", err)
			}
		}
		h, err := ParseHeader(msg)
		if err != nil || h.WireFormat != WireFormatKeyPackage || h.CipherSuite != id {
			t.Fatalf("header %+v %v", h, err)
		}
		for i := 0; i < len(msg); i++ {
			if _, err := ParseKeyPackage(msg[:i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("prefix %d decoded: %v", i, err)
			}
		}
		if _, err := ParseKeyPackage(append(msg, 0)); !errors.Is(err, ErrMalformed) {
			t.Fatal("trailing byte accepted")
		}
	}
}

func TestHeaders(t *testing.T) {
	gid := []byte("group-1")
	cases := []struct {
		msg  []byte
		want Header
	}{
		{PrivateMessage(gid, 7, ContentCommit, []byte("sd"), []byte("ct")), Header{WireFormat: WireFormatPrivateMessage, Epoch: 7, ContentType: ContentCommit}},
		{PublicMessage(gid, 3, SenderMember, 2, ContentProposal, []byte("body")), Header{WireFormat: WireFormatPublicMessage, Epoch: 3, ContentType: ContentProposal, SenderType: SenderMember}},
		{PublicMessage(gid, 3, SenderNewMemberCommit, 0, ContentCommit, []byte("body")), Header{WireFormat: WireFormatPublicMessage, Epoch: 3, ContentType: ContentCommit, SenderType: SenderNewMemberCommit}},
		{GroupInfo(1, gid, 9, []byte("rest")), Header{WireFormat: WireFormatGroupInfo, Epoch: 9, CipherSuite: 1}},
	}
	for i, c := range cases {
		h, err := ParseHeader(c.msg)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if h.WireFormat != c.want.WireFormat || h.Epoch != c.want.Epoch || h.ContentType != c.want.ContentType ||
			h.SenderType != c.want.SenderType || !bytes.Equal(h.GroupID, gid) || h.Size != len(c.msg) {
			t.Fatalf("case %d: got %+v", i, h)
		}
		// PrivateMessage is fully framed: every proper prefix fails.
		if c.want.WireFormat == WireFormatPrivateMessage {
			for n := 0; n < len(c.msg); n++ {
				if _, err := ParseHeader(c.msg[:n]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("prefix %d accepted", n)
				}
			}
		}
	}
	w := Welcome(1, [][]byte{[]byte("ref1"), []byte("ref2")}, []byte("egi"))
	h, err := ParseHeader(w)
	if err != nil || len(h.NewMembers) != 2 || string(h.NewMembers[1]) != "ref2" {
		t.Fatalf("welcome: %+v %v", h, err)
	}
	for _, bad := range [][]byte{nil, {0, 1}, {0, 2, 0, 1}, {0, 1, 0, 9}, {0, 1, 0, 2, 0x40}} {
		if _, err := ParseHeader(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%x accepted", bad)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(PrivateMessage([]byte("g"), 1, 1, []byte("a"), []byte("b")))
	f.Add(Welcome(1, [][]byte{[]byte("r")}, []byte("x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseHeader(b)
		_, _ = ParseKeyPackage(b)
	})
}
