// Package as is mlskit's authentication service (RFC 9750, Section 4): an
// operator-run certificate authority that issues X.509 device credentials
// binding a client identity to its MLS signature key, validates chains
// against itself, and revokes.
//
// # Use
//
// The delivery service and clients use it only through the Validator
// interface: given an MLS Credential (RFC 9420, Section 5.3), the cipher
// suite and the signature key from a LeafNode or a login, a Validator says
// which client the credential names, or why it does not vouch for that key.
//
//   - CA issues and revokes, and publishes a signed CRL.
//   - X509Validator checks x509 credentials against the CA certificate and
//     the latest CRL; it is what a delivery service or client runs.
//   - BasicValidator accepts basic credentials, which carry only an
//     identity: nothing vouches for the key, so the caller must pin it
//     (mlsd binds an identity to its first key).
package as

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/mls"
)

// Errors a Validator returns; callers branch on them with errors.Is.
var (
	ErrUnsupportedCredential = errors.New("as: unsupported credential type")
	ErrInvalidCredential     = errors.New("as: invalid credential")
	ErrKeyMismatch           = errors.New("as: credential does not bind this signature key")
	ErrRevoked               = errors.New("as: certificate revoked")
)

// Identity is what a valid credential establishes.
type Identity struct {
	ClientID string
	// Vouched is true when an authority binds ClientID to the key (an x509
	// chain to the CA); false for basic credentials, whose key the caller
	// must pin itself.
	Vouched bool
}

// Validator checks a credential. Implementations are safe for concurrent
// use. Errors wrap ErrUnsupportedCredential, ErrInvalidCredential,
// ErrKeyMismatch or ErrRevoked; anything else is a failure of the validator
// itself.
type Validator interface {
	Validate(ctx context.Context, credential []byte, suite uint16, signatureKey []byte) (Identity, error)
}

// MaxClientIDLen bounds identities.
const MaxClientIDLen = 255

// CheckClientID rejects identities that cannot be used as client ids: empty,
// too long, or with control characters.
func CheckClientID(id string) error {
	if id == "" || len(id) > MaxClientIDLen {
		return fmt.Errorf("%w: identity length %d", ErrInvalidCredential, len(id))
	}
	for _, c := range []byte(id) {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: control character in identity", ErrInvalidCredential)
		}
	}
	return nil
}

// BasicValidator accepts basic credentials (RFC 9420, Section 5.3.1).
type BasicValidator struct{}

// Validate implements Validator.
func (BasicValidator) Validate(_ context.Context, credential []byte, _ uint16, _ []byte) (Identity, error) {
	c, err := mls.ParseCredential(credential)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredential, err)
	}
	if c.Type != mls.CredentialTypeBasic {
		return Identity{}, ErrUnsupportedCredential
	}
	if err := CheckClientID(string(c.Identity)); err != nil {
		return Identity{}, err
	}
	return Identity{ClientID: string(c.Identity)}, nil
}

// Chain tries each validator in turn, moving on only when one reports
// ErrUnsupportedCredential.
type Chain []Validator

// Validate implements Validator.
func (ch Chain) Validate(ctx context.Context, credential []byte, suite uint16, key []byte) (Identity, error) {
	for _, v := range ch {
		id, err := v.Validate(ctx, credential, suite, key)
		if !errors.Is(err, ErrUnsupportedCredential) {
			return id, err
		}
	}
	return Identity{}, ErrUnsupportedCredential
}

// SignatureKey converts an MLS SignaturePublicKey of the given suite to a Go
// public key (RFC 9420, Section 5.1.1: Ed25519 raw, ECDSA uncompressed).
func SignatureKey(suite uint16, key []byte) (any, error) {
	switch suite {
	case 1, 3:
		if len(key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Ed25519 key length %d", ErrKeyMismatch, len(key))
		}
		return ed25519.PublicKey(append([]byte(nil), key...)), nil
	case 2, 5, 7:
		curve := map[uint16]elliptic.Curve{2: elliptic.P256(), 5: elliptic.P521(), 7: elliptic.P384()}[suite]
		pk, err := ecdsa.ParseUncompressedPublicKey(curve, key)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKeyMismatch, err)
		}
		return pk, nil
	}
	return nil, fmt.Errorf("%w: suite %d has no X.509 signature algorithm here", ErrUnsupportedCredential, suite)
}
