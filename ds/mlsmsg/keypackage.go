package mlsmsg

import (
	"errors"
	"fmt"
	"time"

	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// Credential types (RFC 9420, Section 5.3).
const (
	CredentialBasic uint16 = 1
	CredentialX509  uint16 = 2
)

// ExtensionLastResort marks a last-resort KeyPackage (the "last_resort"
// KeyPackage extension of the MLS extensions draft). mlsd also accepts a
// last-resort KeyPackage without it, in the upload request's own field.
const ExtensionLastResort uint16 = 0x000A

// Credential is an MLS Credential (RFC 9420, Section 5.3).
type Credential struct {
	Type         uint16
	Identity     []byte   // basic
	Certificates [][]byte // x509, leaf first
	Raw          []byte   // the encoding
}

// ParseCredential decodes exactly one basic or x509 Credential.
func ParseCredential(data []byte) (*Credential, error) {
	c, err := wire.Decode[wire.Credential](data)
	if err != nil {
		return nil, malformed("Credential", err)
	}
	return fromWire(c, data)
}

func fromWire(c *wire.Credential, raw []byte) (*Credential, error) {
	out := &Credential{Type: uint16(c.CredentialType), Identity: c.Identity, Certificates: c.Certificates, Raw: raw}
	switch c.CredentialType {
	case wire.CredentialTypeBasic:
	case wire.CredentialTypeX509:
		if len(c.Certificates) == 0 {
			return nil, malformed("Credential: empty certificate chain", nil)
		}
	default:
		return nil, fmt.Errorf("%w: credential type %d", ErrUnsupported, c.CredentialType)
	}
	return out, nil
}

// BasicCredential encodes a basic credential for identity.
func BasicCredential(identity []byte) []byte {
	out, _ := wire.Encode(&wire.Credential{CredentialType: wire.CredentialTypeBasic, Identity: identity})
	return out
}

// X509Credential encodes an x509 credential from DER certificates, leaf first.
func X509Credential(chain [][]byte) []byte {
	out, _ := wire.Encode(&wire.Credential{CredentialType: wire.CredentialTypeX509, Certificates: chain})
	return out
}

// KeyPackage holds what the directory needs from a KeyPackage (RFC 9420,
// Section 10).
type KeyPackage struct {
	CipherSuite  uint16
	SignatureKey []byte
	Credential   *Credential
	NotBefore    uint64
	NotAfter     uint64
	LastResort   bool // carries the last_resort extension

	kp  *wire.KeyPackage
	raw []byte // the KeyPackage as received, what KeyPackageRef hashes
}

// ParseKeyPackage decodes an MLSMessage carrying a KeyPackage. It does not
// verify signatures; Verify does.
func ParseKeyPackage(msg []byte) (*KeyPackage, error) {
	m, err := wire.UnmarshalMLSMessage(msg)
	if err != nil {
		return nil, malformed("MLSMessage", err)
	}
	if m.Version != wire.ProtocolVersionMLS10 || m.KeyPackage == nil {
		return nil, malformed("MLSMessage: not an mls10 KeyPackage", nil)
	}
	w := m.KeyPackage
	if w.Version != wire.ProtocolVersionMLS10 {
		return nil, malformed("KeyPackage: version", nil)
	}
	// RFC 9420, Section 10.1: the leaf node's source must be key_package.
	if w.LeafNode.LeafNodeSource != wire.LeafNodeSourceKeyPackage {
		return nil, malformed("KeyPackage: leaf node source is not key_package", nil)
	}
	credRaw, err := wire.Encode(&w.LeafNode.Credential)
	if err != nil {
		return nil, malformed("KeyPackage credential", err)
	}
	cred, err := fromWire(&w.LeafNode.Credential, credRaw)
	if err != nil {
		return nil, err
	}
	kp := &KeyPackage{
		CipherSuite: uint16(w.CipherSuite), SignatureKey: w.LeafNode.SignatureKey, Credential: cred,
		NotBefore: w.LeafNode.Lifetime.NotBefore, NotAfter: w.LeafNode.Lifetime.NotAfter,
		kp: w, raw: w.Raw(),
	}
	for _, e := range w.Extensions {
		if uint16(e.ExtensionType) == ExtensionLastResort {
			kp.LastResort = true
		}
	}
	return kp, nil
}

// Policy errors for KeyPackages.
var (
	ErrInvalidSignature = errors.New("mlsmsg: invalid signature")
	ErrLifetime         = errors.New("mlsmsg: KeyPackage lifetime outside policy")
	ErrSuite            = errors.New("mlsmsg: cipher suite not allowed")
)

// Verify checks the KeyPackage against RFC 9420, Section 10.1: the leaf
// node's signature (LeafNodeTBS, source key_package) and the KeyPackage
// signature, both by the leaf's signature key, and the lifetime: now must lie
// within it and it may not span more than maxLifetime (RFC 9750, Section 7).
func (kp *KeyPackage) Verify(now time.Time, maxLifetime time.Duration) error {
	s, err := suite.Lookup(suite.ID(kp.CipherSuite))
	if err != nil {
		return fmt.Errorf("%w: %d", ErrSuite, kp.CipherSuite)
	}
	leaf := &kp.kp.LeafNode
	if err := s.VerifyWithLabel(kp.SignatureKey, "LeafNodeTBS", leaf.TBS(nil, 0), leaf.Signature); err != nil {
		return fmt.Errorf("%w: LeafNode", ErrInvalidSignature)
	}
	if err := s.VerifyWithLabel(kp.SignatureKey, "KeyPackageTBS", kp.kp.TBS(), kp.kp.Signature); err != nil {
		return fmt.Errorf("%w: KeyPackage", ErrInvalidSignature)
	}
	t := uint64(now.Unix())
	if kp.NotBefore > kp.NotAfter || t < kp.NotBefore || t > kp.NotAfter {
		return fmt.Errorf("%w: not valid now", ErrLifetime)
	}
	if maxLifetime > 0 && kp.NotAfter-kp.NotBefore > uint64(maxLifetime/time.Second) {
		return fmt.Errorf("%w: longer than %v", ErrLifetime, maxLifetime)
	}
	return nil
}

// Ref computes the KeyPackageRef (RFC 9420, Section 5.2): RefHash over the
// KeyPackage as received, without the MLSMessage header.
func (kp *KeyPackage) Ref() ([]byte, error) {
	s, err := suite.Lookup(suite.ID(kp.CipherSuite))
	if err != nil {
		return nil, fmt.Errorf("%w: %d", ErrSuite, kp.CipherSuite)
	}
	return s.RefHash("MLS 1.0 KeyPackage Reference", kp.raw), nil
}

// KeyPackageOptions configure BuildKeyPackage.
type KeyPackageOptions struct {
	NotBefore, NotAfter time.Time
	LastResort          bool   // add the last_resort extension
	InitKey             []byte // defaults to 32 bytes derived from the signature key
}

// BuildKeyPackage makes an MLSMessage carrying a KeyPackage signed by
// signer, for tests and tools. The init and encryption keys are opaque to the
// delivery service, so callers may pass any bytes.
func BuildKeyPackage(suiteID uint16, signer suite.Signer, credential []byte, opt KeyPackageOptions) ([]byte, error) {
	init := opt.InitKey
	if init == nil {
		init = make([]byte, 32)
		copy(init, signer.PublicKey())
	}
	cred, err := wire.Decode[wire.Credential](credential)
	if err != nil {
		return nil, err
	}
	caps := wire.Capabilities{
		Versions:     []wire.ProtocolVersion{wire.ProtocolVersionMLS10},
		CipherSuites: []wire.CipherSuite{wire.CipherSuite(suiteID)},
		Credentials:  []wire.CredentialType{wire.CredentialTypeBasic, wire.CredentialTypeX509},
	}
	var exts []wire.Extension
	if opt.LastResort {
		caps.Extensions = []wire.ExtensionType{wire.ExtensionType(ExtensionLastResort)}
		exts = []wire.Extension{{ExtensionType: wire.ExtensionType(ExtensionLastResort), ExtensionData: []byte{}}}
	}
	kp := &wire.KeyPackage{
		Version: wire.ProtocolVersionMLS10, CipherSuite: wire.CipherSuite(suiteID), InitKey: init,
		LeafNode: wire.LeafNode{
			EncryptionKey: init, SignatureKey: signer.PublicKey(), Credential: *cred, Capabilities: caps,
			LeafNodeSource: wire.LeafNodeSourceKeyPackage,
			Lifetime:       wire.Lifetime{NotBefore: uint64(opt.NotBefore.Unix()), NotAfter: uint64(opt.NotAfter.Unix())},
			Extensions:     []wire.Extension{},
		},
		Extensions: exts,
	}
	if kp.Extensions == nil {
		kp.Extensions = []wire.Extension{}
	}
	if kp.LeafNode.Signature, err = signer.SignWithLabel("LeafNodeTBS", kp.LeafNode.TBS(nil, 0)); err != nil {
		return nil, err
	}
	if kp.Signature, err = signer.SignWithLabel("KeyPackageTBS", kp.TBS()); err != nil {
		return nil, err
	}
	return wire.Encode(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatKeyPackage, KeyPackage: kp})
}
