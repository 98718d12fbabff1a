package as

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/mls"
)

func key(t *testing.T, id uint16) []byte {
	s, _ := suite.Lookup(suite.ID(id))
	_, pub, err := s.GenerateSignatureKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestCAIssueValidateRevoke(t *testing.T) {
	ctx := context.Background()
	ca, err := NewCA("mlskit test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, sid := range []uint16{1, 2, 7} {
		pub := key(t, sid)
		der, err := ca.Issue("alice@phone", sid, pub, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cred := x509Cred(t, [][]byte{der})
		v := ca.Validator()
		id, err := v.Validate(ctx, cred, sid, pub)
		if err != nil || id.ClientID != "alice@phone" || !id.Vouched {
			t.Fatalf("suite %d: %+v %v", sid, id, err)
		}
		if _, err := v.Validate(ctx, cred, sid, key(t, sid)); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("other key: %v", err)
		}
		// A CA of its own does not vouch.
		other, _ := NewCA("other", time.Hour)
		if _, err := other.Validator().Validate(ctx, cred, sid, pub); !errors.Is(err, ErrInvalidCredential) {
			t.Fatalf("foreign CA: %v", err)
		}
		// Expired.
		v.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		if _, err := v.Validate(ctx, cred, sid, pub); !errors.Is(err, ErrInvalidCredential) {
			t.Fatalf("expired: %v", err)
		}
		// Revocation, live and through a CRL.
		cert, _ := x509.ParseCertificate(der)
		if err := ca.Revoke(cert.SerialNumber); err != nil {
			t.Fatal(err)
		}
		if _, err := ca.Validator().Validate(ctx, cred, sid, pub); !errors.Is(err, ErrRevoked) {
			t.Fatalf("revoked: %v", err)
		}
		crl, err := ca.CRL(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		remote := NewX509Validator(ca.Certificate())
		if err := remote.SetCRL(crl); err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Validate(ctx, cred, sid, pub); !errors.Is(err, ErrRevoked) {
			t.Fatalf("revoked via CRL: %v", err)
		}
		otherCRL, _ := other.CRL(time.Hour)
		if err := remote.SetCRL(otherCRL); err == nil {
			t.Fatal("CRL from another CA accepted")
		}
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	ca, _ := NewCA("ca", time.Hour)
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	pub := key(t, 1)
	der, _ := ca.Issue("bob", 1, pub, time.Hour)
	cert, _ := x509.ParseCertificate(der)
	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Revoke(cert.SerialNumber); err != nil {
		t.Fatal(err)
	}
	again, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.IsRevoked(cert.SerialNumber) {
		t.Fatal("revocation not persisted")
	}
	if _, err := again.Validator().Validate(context.Background(), x509Cred(t, [][]byte{der}), 1, pub); !errors.Is(err, ErrRevoked) {
		t.Fatalf("%v", err)
	}
}

func TestBasicAndChain(t *testing.T) {
	ctx := context.Background()
	ca, _ := NewCA("ca", time.Hour)
	v := Chain{ca.Validator(), BasicValidator{}}
	id, err := v.Validate(ctx, basicCred(t, []byte("carol")), 1, key(t, 1))
	if err != nil || id.ClientID != "carol" || id.Vouched {
		t.Fatalf("%+v %v", id, err)
	}
	for _, bad := range [][]byte{nil, {0, 1}, basicCred(t, nil), basicCred(t, []byte("a\nb")), {0, 9, 0}} {
		if _, err := v.Validate(ctx, bad, 1, key(t, 1)); err == nil {
			t.Fatalf("%x accepted", bad)
		}
	}
	if _, err := (Chain{ca.Validator()}).Validate(ctx, basicCred(t, []byte("carol")), 1, nil); !errors.Is(err, ErrUnsupportedCredential) {
		t.Fatalf("basic with x509-only: %v", err)
	}
}

func basicCred(t *testing.T, id []byte) []byte {
	t.Helper()
	b, err := mls.BasicCredential(id).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func x509Cred(t *testing.T, chain [][]byte) []byte {
	t.Helper()
	b, err := mls.X509Credential(chain).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
