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
		if i == 1 {
			// encryption_secret: erased on reading (RFC 9420, Section 9.2).
			if *have[i] != nil {
				t.Fatal("encryption_secret kept on reading")
			}
			continue
		}
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

// TestEraseEncryption: issue 12, finding 4. Once erased, encryption_secret
// is zeroed in memory and absent from the saved secrets, which still load;
// before, it is there (positive control).
func TestEraseEncryption(t *testing.T) {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	e := EpochFromSecret(s, bytes.Repeat([]byte{7}, s.HashSize()))
	enc := e.Encryption
	val := bytes.Clone(enc)
	save := func() []byte {
		b := codec.NewBuilder(nil)
		e.MarshalSecrets(b)
		out, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if !bytes.Contains(save(), val) {
		t.Fatal("positive control: encryption_secret not in the saved secrets")
	}
	e.EraseEncryption()
	if !bytes.Equal(enc, make([]byte, len(enc))) || e.Encryption != nil {
		t.Fatal("encryption_secret not zeroed")
	}
	saved := save()
	if bytes.Contains(saved, val) {
		t.Fatal("erased encryption_secret saved")
	}
	got, err := ReadSecrets(s, codec.NewReader(saved))
	if err != nil || got.Encryption != nil || !bytes.Equal(got.Exporter, e.Exporter) {
		t.Fatalf("reload: %v", err)
	}
}
