package mlsmsg

import (
	"errors"
	"fmt"
	"time"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
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
	Raw          []byte   // the encoding as received
}

// ParseCredential decodes exactly one Credential.
func ParseCredential(data []byte) (*Credential, error) {
	r := codec.NewReader(data)
	c, ok := readCredential(r)
	if !ok || !r.Empty() {
		return nil, malformed("Credential")
	}
	return c, nil
}

func readCredential(r *codec.Reader) (*Credential, bool) {
	start := r.Rest()
	n0 := r.Len()
	c := &Credential{}
	if !r.ReadUint16(&c.Type) {
		return nil, false
	}
	switch c.Type {
	case CredentialBasic:
		if !r.ReadOpaque(&c.Identity) {
			return nil, false
		}
	case CredentialX509:
		if !r.ReadList(func(s *codec.Reader) bool {
			var cert []byte
			if !s.ReadOpaque(&cert) {
				return false
			}
			c.Certificates = append(c.Certificates, cert)
			return true
		}) || len(c.Certificates) == 0 {
			return nil, false
		}
	default:
		return nil, false
	}
	c.Raw = append([]byte(nil), start[:n0-r.Len()]...)
	return c, true
}

// BasicCredential encodes a basic credential for identity.
func BasicCredential(identity []byte) []byte {
	b := codec.NewBuilder(nil)
	b.AddUint16(CredentialBasic)
	b.AddOpaque(identity)
	out, _ := b.Bytes()
	return out
}

// X509Credential encodes an x509 credential from DER certificates, leaf first.
func X509Credential(chain [][]byte) []byte {
	b := codec.NewBuilder(nil)
	b.AddUint16(CredentialX509)
	b.AddVector(func(b *codec.Builder) {
		for _, c := range chain {
			b.AddOpaque(c)
		}
	})
	out, _ := b.Bytes()
	return out
}

// KeyPackage holds what the directory needs from a KeyPackage (RFC 9420,
// Section 10).
type KeyPackage struct {
	CipherSuite  uint16
	InitKey      []byte
	SignatureKey []byte
	Credential   *Credential
	NotBefore    uint64
	NotAfter     uint64
	LastResort   bool // carries the last_resort extension

	tbs       []byte // KeyPackageTBS as received
	signature []byte
	leafTBS   []byte // LeafNodeTBS as received (key_package source)
	leafSig   []byte
}

// Leaf node sources (RFC 9420, Section 7.2).
const leafSourceKeyPackage uint8 = 1

func parseKeyPackage(r *codec.Reader) (*KeyPackage, error) {
	kp := &KeyPackage{}
	start := r.Rest()
	n0 := r.Len()
	var version uint16
	if !r.ReadUint16(&version) || !r.ReadUint16(&kp.CipherSuite) || !r.ReadOpaque(&kp.InitKey) {
		return nil, malformed("KeyPackage")
	}
	if version != VersionMLS10 {
		return nil, malformed("KeyPackage: version")
	}
	// LeafNode (RFC 9420, Section 7.2).
	leafStart := r.Rest()
	l0 := r.Len()
	var encKey []byte
	var cred *Credential
	var ok bool
	if !r.ReadOpaque(&encKey) || !r.ReadOpaque(&kp.SignatureKey) {
		return nil, malformed("LeafNode")
	}
	if cred, ok = readCredential(r); !ok {
		return nil, malformed("LeafNode credential")
	}
	kp.Credential = cred
	// Capabilities: five vectors (Section 7.2).
	for i := 0; i < 5; i++ {
		if !r.ReadVector(func(s *codec.Reader) bool { return s.Skip(s.Len()) && s.Len()%2 == 0 }) {
			return nil, malformed("LeafNode capabilities")
		}
	}
	var source uint8
	if !r.ReadUint8(&source) || source != leafSourceKeyPackage ||
		!r.ReadUint64(&kp.NotBefore) || !r.ReadUint64(&kp.NotAfter) ||
		!readExtensions(r, nil) {
		return nil, malformed("LeafNode")
	}
	kp.leafTBS = append([]byte(nil), leafStart[:l0-r.Len()]...)
	if !r.ReadOpaque(&kp.leafSig) {
		return nil, malformed("LeafNode signature")
	}
	if !readExtensions(r, func(t uint16) {
		if t == ExtensionLastResort {
			kp.LastResort = true
		}
	}) {
		return nil, malformed("KeyPackage extensions")
	}
	kp.tbs = append([]byte(nil), start[:n0-r.Len()]...)
	if !r.ReadOpaque(&kp.signature) || !r.Empty() {
		return nil, malformed("KeyPackage signature")
	}
	return kp, nil
}

// readExtensions reads Extension extensions<V> (RFC 9420, Section 7.2),
// rejecting duplicate types.
func readExtensions(r *codec.Reader, seen func(uint16)) bool {
	types := map[uint16]bool{}
	return r.ReadList(func(s *codec.Reader) bool {
		var t uint16
		var data []byte
		if !s.ReadUint16(&t) || !s.ReadOpaque(&data) || types[t] {
			return false
		}
		types[t] = true
		if seen != nil {
			seen(t)
		}
		return true
	})
}

// ParseKeyPackage decodes an MLSMessage carrying a KeyPackage. It does not
// verify signatures; Verify does.
func ParseKeyPackage(msg []byte) (*KeyPackage, error) {
	r := codec.NewReader(msg)
	var v, wf uint16
	if !r.ReadUint16(&v) || !r.ReadUint16(&wf) || v != VersionMLS10 || wf != WireFormatKeyPackage {
		return nil, malformed("MLSMessage: not a KeyPackage")
	}
	return parseKeyPackage(r)
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
	if err := s.VerifyWithLabel(kp.SignatureKey, "LeafNodeTBS", kp.leafTBS, kp.leafSig); err != nil {
		return fmt.Errorf("%w: LeafNode", ErrInvalidSignature)
	}
	if err := s.VerifyWithLabel(kp.SignatureKey, "KeyPackageTBS", kp.tbs, kp.signature); err != nil {
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

// Ref computes the KeyPackageRef of the encoded KeyPackage (RFC 9420,
// Section 5.2): RefHash over the KeyPackage itself, without the MLSMessage
// header.
func Ref(suiteID uint16, msg []byte) ([]byte, error) {
	s, err := suite.Lookup(suite.ID(suiteID))
	if err != nil {
		return nil, fmt.Errorf("%w: %d", ErrSuite, suiteID)
	}
	if len(msg) < 4 {
		return nil, malformed("KeyPackage")
	}
	return s.RefHash("MLS 1.0 KeyPackage Reference", msg[4:]), nil
}

// KeyPackageOptions configure BuildKeyPackage.
type KeyPackageOptions struct {
	NotBefore, NotAfter time.Time
	LastResort          bool   // add the last_resort extension
	InitKey             []byte // defaults to random-looking bytes of a fixed size
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
	leaf := codec.NewBuilder(nil)
	leaf.AddOpaque(init) // encryption_key
	leaf.AddOpaque(signer.PublicKey())
	leaf.AddBytes(credential)
	// Capabilities (RFC 9420, Section 7.2).
	leaf.AddVector(func(b *codec.Builder) { b.AddUint16(VersionMLS10) })
	leaf.AddVector(func(b *codec.Builder) { b.AddUint16(suiteID) })
	leaf.AddVector(func(b *codec.Builder) {
		if opt.LastResort {
			b.AddUint16(ExtensionLastResort)
		}
	})
	leaf.AddVector(func(b *codec.Builder) {})
	leaf.AddVector(func(b *codec.Builder) { b.AddUint16(CredentialBasic); b.AddUint16(CredentialX509) })
	leaf.AddUint8(leafSourceKeyPackage)
	leaf.AddUint64(uint64(opt.NotBefore.Unix()))
	leaf.AddUint64(uint64(opt.NotAfter.Unix()))
	leaf.AddVector(func(b *codec.Builder) {})
	leafTBS, err := leaf.Bytes()
	if err != nil {
		return nil, err
	}
	leafSig, err := signer.SignWithLabel("LeafNodeTBS", leafTBS)
	if err != nil {
		return nil, err
	}
	kp := codec.NewBuilder(nil)
	kp.AddUint16(VersionMLS10)
	kp.AddUint16(suiteID)
	kp.AddOpaque(init)
	kp.AddBytes(leafTBS)
	kp.AddOpaque(leafSig)
	kp.AddVector(func(b *codec.Builder) {
		if opt.LastResort {
			b.AddUint16(ExtensionLastResort)
			b.AddOpaque(nil)
		}
	})
	tbs, err := kp.Bytes()
	if err != nil {
		return nil, err
	}
	sig, err := signer.SignWithLabel("KeyPackageTBS", tbs)
	if err != nil {
		return nil, err
	}
	out := codec.NewBuilder(nil)
	out.AddUint16(VersionMLS10)
	out.AddUint16(WireFormatKeyPackage)
	out.AddBytes(tbs)
	out.AddOpaque(sig)
	return out.Bytes()
}
