package keyschedule

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
)

func TestSecretsRoundTrip(t *testing.T) {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	e := EpochFromSecret(s, bytes.Repeat([]byte{5}, s.HashSize()))
	b := codec.NewBuilder(nil)
	e.MarshalSecrets(b)
	enc, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	r := codec.NewReader(enc)
	got, err := ReadSecrets(s, r)
	if err != nil || !r.Empty() {
		t.Fatal(err)
	}
	want, have := e.fields(), got.fields()
	for i := range want {
		if !bytes.Equal(*want[i], *have[i]) {
			t.Fatalf("secret %d differs", i)
		}
	}
	if got.Suite() != s {
		t.Fatal("suite not kept")
	}
	for i := range len(enc) {
		if _, err := ReadSecrets(s, codec.NewReader(enc[:i])); !errors.Is(err, ErrCorruptSecrets) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
	// Secrets of another suite's length are refused.
	s512, err := suite.Lookup(suite.MLS256DHKEMX448AES256GCMSHA512Ed448)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecrets(s512, codec.NewReader(enc)); !errors.Is(err, ErrCorruptSecrets) {
		t.Fatalf("wrong suite: %v", err)
	}
}
