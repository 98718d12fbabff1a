package as

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/mls"
)

// GroupValidator adapts a Validator to the group layer's
// mls.CredentialValidator, so that a client checks every credential its
// groups meet (KeyPackages, joined trees, Updates, commit paths; RFC 9420,
// Section 5.3.1) with the same authentication service the delivery service
// uses (RFC 9750, Section 4).
//
// mls.CredentialValidator is not told the cipher suite, which the Validator
// needs to read the signature key; a client uses one suite for all its
// groups, so it is fixed here.
//
// GroupValidator also implements mls.SuccessorValidator: a member may
// replace its credential only by one that the Validator accepts (checked
// separately by the group layer) and that names the same client id
// (RFC 9420, Section 5.3.1: "the new credential represents the same
// client").
type GroupValidator struct {
	Validator Validator
	Suite     uint16
}

var errOtherCredential = errors.New("as: credential type not supported by the authentication service")

// ValidateCredential implements mls.CredentialValidator.
func (g GroupValidator) ValidateCredential(c mls.Credential, signatureKey []byte) error {
	_, err := g.Identify(c, signatureKey)
	return err
}

// Identify validates c for signatureKey and returns the identity it
// establishes.
func (g GroupValidator) Identify(c mls.Credential, signatureKey []byte) (Identity, error) {
	switch c.Type {
	case mls.CredentialTypeBasic:
	case mls.CredentialTypeX509:
		if len(c.Certificates) == 0 {
			return Identity{}, fmt.Errorf("%w: empty certificate chain", ErrInvalidCredential)
		}
	default:
		return Identity{}, fmt.Errorf("%w: type %d", ErrUnsupportedCredential, c.Type)
	}
	enc, err := c.Marshal()
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredential, err)
	}
	if g.Validator == nil {
		return Identity{}, errOtherCredential
	}
	return g.Validator.Validate(context.Background(), enc, g.Suite, signatureKey)
}

// ValidateSuccessor implements mls.SuccessorValidator: old and new must
// name the same client id.
func (g GroupValidator) ValidateSuccessor(old, new mls.Credential) error {
	a, b := ClientIDOf(old), ClientIDOf(new)
	if a == "" || a != b {
		return fmt.Errorf("%w: credential of %q replaced by one of %q", ErrInvalidCredential, a, b)
	}
	return nil
}

// ClientIDOf returns the client id a credential names without validating
// it: a Basic credential's identity or an X.509 leaf's subject common name
// (what X509Validator returns as Identity.ClientID). It returns "" when
// there is none.
func ClientIDOf(c mls.Credential) string {
	switch c.Type {
	case mls.CredentialTypeBasic:
		return string(c.Identity)
	case mls.CredentialTypeX509:
		if len(c.Certificates) > 0 {
			if cert, err := x509.ParseCertificate(c.Certificates[0]); err == nil {
				return cert.Subject.CommonName
			}
		}
	}
	return ""
}
