package mls

import (
	"errors"

	"github.com/mlskit/mlskit/internal/wire"
)

// CredentialType identifies a credential format (RFC 9420, Section 5.3).
type CredentialType uint16

// Credential types (RFC 9420, Section 17.5).
const (
	CredentialTypeBasic CredentialType = 1
	CredentialTypeX509  CredentialType = 2
)

// Credential binds an identity to a member's signature key (RFC 9420,
// Section 5.3). Only the fields of its Type are meaningful.
type Credential struct {
	Type         CredentialType
	Identity     []byte   // Basic
	Certificates [][]byte // X.509: DER certificates, leaf first
	Data         []byte   // any other type, carried opaquely
}

// BasicCredential returns a Basic credential for identity.
func BasicCredential(identity []byte) Credential {
	return Credential{Type: CredentialTypeBasic, Identity: append([]byte(nil), identity...)}
}

// X509Credential returns an X.509 credential for a DER certificate chain,
// leaf first.
func X509Credential(chain [][]byte) Credential {
	c := Credential{Type: CredentialTypeX509}
	for _, der := range chain {
		c.Certificates = append(c.Certificates, append([]byte(nil), der...))
	}
	return c
}

// Marshal encodes the credential as the Credential struct of RFC 9420,
// Section 5.3, as it appears inside a LeafNode. Delivery and authentication
// services exchange credentials in this form.
func (c Credential) Marshal() ([]byte, error) {
	w := c.toWire()
	return wire.Encode(&w)
}

// ParseCredential decodes one Credential (RFC 9420, Section 5.3); trailing
// bytes are rejected. A credential type other than basic and x509 is kept
// opaquely in Data. An x509 credential with no certificate is refused: the
// leaf certificate is what binds the identity (Section 5.3.3).
func ParseCredential(data []byte) (Credential, error) {
	w, err := wire.Decode[wire.Credential](data)
	if err != nil {
		return Credential{}, err
	}
	if w.CredentialType == wire.CredentialTypeX509 && len(w.Certificates) == 0 {
		return Credential{}, invalid(ErrMalformed, "5.3.3", "x509 credential without certificates")
	}
	return credentialFromWire(*w), nil
}

func (c Credential) toWire() wire.Credential {
	return wire.Credential{CredentialType: wire.CredentialType(c.Type), Identity: c.Identity,
		Certificates: c.Certificates, Unknown: c.Data}
}

func credentialFromWire(w wire.Credential) Credential {
	return Credential{Type: CredentialType(w.CredentialType), Identity: w.Identity,
		Certificates: w.Certificates, Data: w.Unknown}
}

// CredentialValidator is implemented by the application (its authentication
// service, RFC 9750 Section 4) to decide which credentials to trust
// (RFC 9420, Section 5.3.1). It is called for every credential a group meets:
// in KeyPackages, leaves of a joined tree, Updates, commit paths and external
// senders. A non-nil error rejects the credential; it is wrapped with
// ErrCredentialRejected and must not contain secrets.
type CredentialValidator interface {
	ValidateCredential(cred Credential, signatureKey []byte) error
}

// SuccessorValidator may also be implemented by a CredentialValidator. It
// decides whether a member may replace its credential old with new in an
// Update or commit path, or an external rejoin (RFC 9420, Sections 5.3.1 and
// 12.1.2: the new credential must represent the same client). Without it,
// a Basic credential may only be replaced by one with the same identity and
// an X.509 credential by one whose leaf certificate has the same subject.
type SuccessorValidator interface {
	ValidateSuccessor(old, new Credential) error
}

// BasicCredentialValidator accepts Basic credentials and rejects all others.
// It is the default; real applications bind identities to keys through their
// authentication service and should supply their own.
type BasicCredentialValidator struct{}

var errNotBasic = errors.New("only Basic credentials are accepted by the default validator")

// ValidateCredential implements CredentialValidator.
func (BasicCredentialValidator) ValidateCredential(c Credential, _ []byte) error {
	if c.Type != CredentialTypeBasic {
		return errNotBasic
	}
	return nil
}

// AcceptAllCredentials accepts every credential. It is for tests and for the
// interop client, which has no authentication service.
type AcceptAllCredentials struct{}

// ValidateCredential implements CredentialValidator.
func (AcceptAllCredentials) ValidateCredential(Credential, []byte) error { return nil }

// treeValidator adapts a CredentialValidator to the ratchet tree's interface.
type treeValidator struct{ v CredentialValidator }

func (t treeValidator) Validate(c wire.Credential, key []byte) error {
	return t.v.ValidateCredential(credentialFromWire(c), key)
}

var errSuccessor = errors.New("new credential does not represent the same client")

// validateSuccessor applies the application's successor rule, or the default.
func validateSuccessor(v CredentialValidator, old, new Credential) error {
	if s, ok := v.(SuccessorValidator); ok {
		if err := s.ValidateSuccessor(old, new); err != nil {
			return invalidCause(ErrCredentialRejected, err, "5.3.1", "credential succession")
		}
		return nil
	}
	if old.Type != new.Type {
		return invalidCause(ErrCredentialRejected, errSuccessor, "5.3.1", "credential succession")
	}
	switch old.Type {
	case CredentialTypeBasic:
		if string(old.Identity) != string(new.Identity) {
			return invalidCause(ErrCredentialRejected, errSuccessor, "5.3.1", "credential succession")
		}
	case CredentialTypeX509:
		if !sameX509Subject(old, new) {
			return invalidCause(ErrCredentialRejected, errSuccessor, "5.3.1", "credential succession")
		}
	}
	return nil
}
