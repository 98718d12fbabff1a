package mls

import (
	"bytes"
	"errors"
	"testing"
)

// Credential.Marshal and ParseCredential round-trip, and no proper prefix
// of an encoding decodes (RFC 9420, Section 5.3).
func TestCredentialEncoding(t *testing.T) {
	for _, c := range []Credential{
		BasicCredential([]byte("alice")),
		X509Credential([][]byte{{1, 2, 3}, {4}}),
		{Type: 9, Data: []byte{7, 7}},
	} {
		enc, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseCredential(enc)
		if err != nil {
			t.Fatalf("%v: %v", c.Type, err)
		}
		again, _ := got.Marshal()
		if !bytes.Equal(enc, again) {
			t.Fatalf("%v: round trip %x != %x", c.Type, again, enc)
		}
		for i := range enc {
			if _, err := ParseCredential(enc[:i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%v: prefix %d: %v", c.Type, i, err)
			}
		}
		if _, err := ParseCredential(append(enc, 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%v: trailing byte accepted: %v", c.Type, err)
		}
	}
	empty, _ := X509Credential(nil).Marshal()
	if _, err := ParseCredential(empty); !errors.Is(err, ErrMalformed) {
		t.Fatalf("x509 without certificates: %v", err)
	}
}
