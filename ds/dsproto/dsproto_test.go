package dsproto

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/mlskit/mlskit/ds/chain"
	"github.com/mlskit/mlskit/internal/suite"
)

func TestAuthProof(t *testing.T) {
	s, err := suite.Lookup(1)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := s.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	ch, cred := []byte("challenge"), []byte("credential")
	sig, err := SignAuth(1, signer, ch, cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyAuth(1, pub, ch, cred, sig); err != nil {
		t.Fatal(err)
	}
	// The proof binds the challenge, the credential and the suite.
	for name, f := range map[string]func() error{
		"challenge":  func() error { return VerifyAuth(1, pub, []byte("other"), cred, sig) },
		"credential": func() error { return VerifyAuth(1, pub, ch, []byte("other"), sig) },
		"suite":      func() error { return VerifyAuth(3, pub, ch, cred, sig) },
	} {
		if f() == nil {
			t.Errorf("a proof verified with another %s", name)
		}
	}
}

func TestRecordConversion(t *testing.T) {
	r := chain.Record{GroupID: []byte("g"), Seq: 3, Epoch: 2, Kind: chain.KindWelcome, WireFormat: 3, Sender: "alice",
		Recipients: []string{"bob"}, Body: []byte("welcome"), BodyHash: []byte{1}, PrevHash: []byte{2}, ChainHash: []byte{3},
		Time: time.UnixMilli(1234)}
	for _, c := range []struct {
		client string
		body   []byte
	}{{"bob", r.Body}, {"carol", nil}} {
		p := RecordToProto(&r, c.client)
		if !bytes.Equal(p.Body, c.body) {
			t.Fatalf("%s gets body %q", c.client, p.Body)
		}
		back := RecordFromProto(p)
		if back.Seq != r.Seq || !bytes.Equal(back.ChainHash, r.ChainHash) || !back.Time.Equal(r.Time) || back.Sender != r.Sender {
			t.Fatalf("%s: %+v", c.client, back)
		}
	}
}
