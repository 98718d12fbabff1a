package client

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mlskit/mlskit/mls"
)

// identityFile holds the client's long-term identity: its name on the
// delivery service, the server, the cipher suite, the signature private key
// and the credential. It is written once by Init, readable only by its owner.
const identityFile = "identity.json"

// Identity is a client's long-term identity (RFC 9420, Section 5.3): a
// credential and the signature key it is bound to.
type Identity struct {
	Name   string          `json:"name"`
	Server string          `json:"server,omitempty"`
	Suite  mls.CipherSuite `json:"cipher_suite"`
	// SignatureKey is the private signature key. It never appears in
	// errors or output.
	SignatureKey []byte `json:"signature_key"`
	// X509Chain, when set, is the DER certificate chain (leaf first) of an
	// X.509 credential issued by the authentication service; otherwise the
	// credential is Basic with Name as its identity.
	X509Chain [][]byte `json:"x509_chain,omitempty"`
}

// String never prints the private key.
func (id *Identity) String() string { return fmt.Sprintf("Identity{%s}", id.Name) }

// Credential returns the MLS credential of the identity.
func (id *Identity) Credential() mls.Credential {
	if len(id.X509Chain) > 0 {
		return mls.X509Credential(id.X509Chain)
	}
	return mls.BasicCredential([]byte(id.Name))
}

// NameOf returns the client name a credential stands for: a Basic
// credential's identity, or an X.509 leaf certificate's subject common name
// (the identity the authentication service binds, docs/mlsd.md).
func NameOf(c mls.Credential) string {
	switch c.Type {
	case mls.CredentialTypeBasic:
		return string(c.Identity)
	case mls.CredentialTypeX509:
		if len(c.Certificates) > 0 {
			if cert, err := x509.ParseCertificate(c.Certificates[0]); err == nil {
				return cert.Subject.CommonName
			}
		}
		return "(unreadable certificate)"
	}
	return fmt.Sprintf("(credential type %d)", c.Type)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), tmpPrefix+"*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func loadIdentity(h home) (*Identity, error) {
	var id Identity
	found, err := loadJSON(context.Background(), h, identityFile, &id)
	if err != nil {
		return nil, err
	}
	if !found {
		if d, ok := h.(dirHome); ok {
			return nil, &UserError{Msg: fmt.Sprintf("no identity in %s: run \"mls init --name NAME --server URL --dir %s\" first", d, d), Err: ErrNoIdentity}
		}
		return nil, &UserError{Msg: fmt.Sprintf("no identity in %s: make one with InitStore first", h), Err: ErrNoIdentity}
	}
	if id.Name == "" || len(id.SignatureKey) == 0 {
		return nil, &UserError{Msg: fmt.Sprintf("%s is incomplete", h.where(identityFile)), Err: ErrDamaged}
	}
	return &id, nil
}

func saveIdentity(h home, id *Identity) error {
	return saveJSON(context.Background(), h, identityFile, id, true)
}

// ErrNoIdentity: the directory or store holds no identity yet (Init or
// InitStore makes one).
var ErrNoIdentity = errors.New("no identity")
