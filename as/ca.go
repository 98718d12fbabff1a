package as

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mlskit/mlskit/mls"
)

// CA is an operator-run certificate authority for device credentials. It is
// safe for concurrent use.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer

	mu      sync.Mutex
	revoked map[string]time.Time // serial (decimal) -> revocation time
	dir     string               // where state is saved, if loaded from disk
}

// NewCA creates a CA with a fresh P-256 key and a self-signed certificate.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, revoked: map[string]time.Time{}}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n.Add(n, big.NewInt(1))
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Issue makes a device certificate binding clientID to the MLS signature key
// of the given suite, valid for validity from now. It returns the DER
// certificate; X509Credential wraps it as an MLS credential.
func (ca *CA) Issue(clientID string, suite uint16, signatureKey []byte, validity time.Duration) ([]byte, error) {
	if err := CheckClientID(clientID); err != nil {
		return nil, err
	}
	pub, err := SignatureKey(suite, signatureKey)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: clientID},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
}

// Revoke revokes the certificate with this serial number.
func (ca *CA) Revoke(serial *big.Int) error {
	ca.mu.Lock()
	ca.revoked[serial.String()] = time.Now()
	dir := ca.dir
	ca.mu.Unlock()
	if dir != "" {
		return ca.Save(dir)
	}
	return nil
}

// IsRevoked reports whether the CA has revoked serial.
func (ca *CA) IsRevoked(serial *big.Int) bool {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	_, ok := ca.revoked[serial.String()]
	return ok
}

// CRL returns a DER certificate revocation list signed by the CA, valid for
// the given time, for validators that run apart from the CA.
func (ca *CA) CRL(validity time.Duration) ([]byte, error) {
	ca.mu.Lock()
	var entries []x509.RevocationListEntry
	for s, t := range ca.revoked {
		n, _ := new(big.Int).SetString(s, 10)
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: t})
	}
	ca.mu.Unlock()
	now := time.Now()
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		RevokedCertificateEntries: entries,
		Number:                    big.NewInt(now.UnixNano()),
		ThisUpdate:                now,
		NextUpdate:                now.Add(validity),
	}, ca.cert, ca.key)
}

// Validator returns a validator that checks against this CA's live
// revocation state.
func (ca *CA) Validator() *X509Validator {
	v := NewX509Validator(ca.cert)
	v.revoked = ca.IsRevoked
	return v
}

type caState struct {
	Revoked map[string]time.Time `json:"revoked"`
}

// Save writes ca.pem, ca-key.pem and revoked.json into dir.
func (ca *CA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return err
	}
	ca.mu.Lock()
	st, err := json.Marshal(caState{Revoked: ca.revoked})
	ca.dir = dir
	ca.mu.Unlock()
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.pem":       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}),
		"ca-key.pem":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		"revoked.json": st,
	}
	for name, data := range files {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// LoadCA reads a CA saved by Save; later revocations are saved there too.
func LoadCA(dir string) (*CA, error) {
	cert, err := LoadCertificate(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("as: ca-key.pem: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("as: ca-key.pem: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("as: ca-key.pem: not a signing key")
	}
	ca := &CA{cert: cert, key: signer, revoked: map[string]time.Time{}, dir: dir}
	if st, err := os.ReadFile(filepath.Join(dir, "revoked.json")); err == nil {
		var s caState
		if err := json.Unmarshal(st, &s); err != nil {
			return nil, fmt.Errorf("as: revoked.json: %w", err)
		}
		if s.Revoked != nil {
			ca.revoked = s.Revoked
		}
	}
	return ca, nil
}

// LoadCertificate reads one PEM certificate.
func LoadCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("as: %s: no certificate", path)
	}
	return x509.ParseCertificate(b.Bytes)
}

// X509Validator validates x509 credentials (RFC 9420, Section 5.3.1)
// against one CA: the chain must verify to it for client authentication, no
// certificate in it may be revoked, and the leaf's public key must be the
// MLS signature key (RFC 9420, Section 5.3.1: "the public key in the
// end-entity certificate MUST be the signature key").
type X509Validator struct {
	roots   *x509.CertPool
	ca      *x509.Certificate
	Now     func() time.Time
	mu      sync.RWMutex
	crl     map[string]bool
	revoked func(*big.Int) bool
}

// NewX509Validator trusts ca.
func NewX509Validator(ca *x509.Certificate) *X509Validator {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &X509Validator{roots: roots, ca: ca, Now: time.Now, crl: map[string]bool{}}
}

// SetCRL installs a CRL after checking the CA signed it and it is current.
func (v *X509Validator) SetCRL(der []byte) error {
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("as: CRL: %w", err)
	}
	if err := crl.CheckSignatureFrom(v.ca); err != nil {
		return fmt.Errorf("as: CRL not signed by the CA: %w", err)
	}
	if !crl.NextUpdate.IsZero() && v.Now().After(crl.NextUpdate) {
		return errors.New("as: CRL is out of date")
	}
	m := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		m[e.SerialNumber.String()] = true
	}
	v.mu.Lock()
	v.crl = m
	v.mu.Unlock()
	return nil
}

func (v *X509Validator) isRevoked(c *x509.Certificate) bool {
	v.mu.RLock()
	r := v.crl[c.SerialNumber.String()]
	v.mu.RUnlock()
	return r || v.revoked != nil && v.revoked(c.SerialNumber)
}

// Validate implements Validator.
func (v *X509Validator) Validate(_ context.Context, credential []byte, suite uint16, signatureKey []byte) (Identity, error) {
	c, err := mls.ParseCredential(credential)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredential, err)
	}
	if c.Type != mls.CredentialTypeX509 {
		return Identity{}, ErrUnsupportedCredential
	}
	leaf, err := x509.ParseCertificate(c.Certificates[0])
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredential, err)
	}
	inter := x509.NewCertPool()
	for _, der := range c.Certificates[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			return Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredential, err)
		}
		inter.AddCert(ic)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: v.roots, Intermediates: inter, CurrentTime: v.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredential, err)
	}
	for _, ch := range chains {
		for _, cert := range ch {
			if v.isRevoked(cert) {
				return Identity{}, fmt.Errorf("%w: serial %s", ErrRevoked, cert.SerialNumber)
			}
		}
	}
	want, err := SignatureKey(suite, signatureKey)
	if err != nil {
		return Identity{}, err
	}
	if !publicKeyEqual(leaf.PublicKey, want) {
		return Identity{}, ErrKeyMismatch
	}
	if err := CheckClientID(leaf.Subject.CommonName); err != nil {
		return Identity{}, err
	}
	return Identity{ClientID: leaf.Subject.CommonName, Vouched: true}, nil
}

func publicKeyEqual(a, b any) bool {
	switch a := a.(type) {
	case ed25519.PublicKey:
		b, ok := b.(ed25519.PublicKey)
		return ok && bytes.Equal(a, b)
	case *ecdsa.PublicKey:
		b, ok := b.(*ecdsa.PublicKey)
		return ok && a.Equal(b)
	}
	return false
}

// CAExists reports whether dir already holds a CA saved by Save, and names
// the first of its files found: replacing it loses the CA key (every
// certificate it issued stops verifying) and the revocation list.
func CAExists(dir string) (string, bool) {
	for _, name := range []string{"ca-key.pem", "ca.pem", "revoked.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return name, true
		}
	}
	return "", false
}
