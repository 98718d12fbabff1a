package as

import (
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/mlskit/mlskit/mls"
)

// TestGroupValidator: the group layer's view of the X.509 validator rejects
// what the authentication service rejects, and its successor rule is the
// client id.
func TestGroupValidator(t *testing.T) {
	ca, err := NewCA("ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub, pub2 := key(t, 1), key(t, 1)
	issue := func(ca *CA, name string, k []byte) mls.Credential {
		der, err := ca.Issue(name, 1, k, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return mls.X509Credential([][]byte{der})
	}
	var v mls.CredentialValidator = GroupValidator{Validator: ca.Validator(), Suite: 1}
	good := issue(ca, "alice", pub)
	if err := v.ValidateCredential(good, pub); err != nil {
		t.Fatalf("valid credential rejected: %v", err)
	}
	for _, tc := range []struct {
		name string
		cred mls.Credential
		key  []byte
		want error
	}{
		{"other CA", issue(other, "alice", pub), pub, ErrInvalidCredential},
		{"other key", good, pub2, ErrKeyMismatch},
		{"basic", mls.BasicCredential([]byte("alice")), pub, ErrUnsupportedCredential},
		{"empty chain", mls.Credential{Type: mls.CredentialTypeX509}, pub, ErrInvalidCredential},
		{"unknown type", mls.Credential{Type: 7, Data: []byte{1}}, pub, ErrUnsupportedCredential},
	} {
		if err := v.ValidateCredential(tc.cred, tc.key); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	revoked := issue(ca, "dave", pub2)
	leaf, _ := parseLeaf(revoked)
	if err := ca.Revoke(leaf); err != nil {
		t.Fatal(err)
	}
	if err := v.ValidateCredential(revoked, pub2); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked: got %v", err)
	}

	s := v.(mls.SuccessorValidator)
	if err := s.ValidateSuccessor(good, issue(ca, "alice", pub2)); err != nil {
		t.Fatalf("same client, new key: %v", err)
	}
	if err := s.ValidateSuccessor(good, issue(ca, "bob", pub)); err == nil {
		t.Fatal("a credential of another client was accepted as successor")
	}
	if err := s.ValidateSuccessor(mls.Credential{Type: mls.CredentialTypeX509}, mls.Credential{Type: mls.CredentialTypeX509}); err == nil {
		t.Fatal("unreadable credentials were accepted as successors")
	}
}

func parseLeaf(c mls.Credential) (*big.Int, error) {
	cert, err := x509.ParseCertificate(c.Certificates[0])
	if err != nil {
		return nil, err
	}
	return cert.SerialNumber, nil
}
