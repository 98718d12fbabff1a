package mls

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// CipherSuite is an MLS cipher suite code point (RFC 9420, Section 17.1).
type CipherSuite uint16

// The cipher suites of RFC 9420, Section 17.1, and the post-quantum suites
// of draft-ietf-mls-pq-ciphersuites (provisional private-use code points).
const (
	X25519_AES128GCM_SHA256_Ed25519        = CipherSuite(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	P256_AES128GCM_SHA256_P256             = CipherSuite(suite.MLS128DHKEMP256AES128GCMSHA256P256)
	X25519_CHACHA20POLY1305_SHA256_Ed25519 = CipherSuite(suite.MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519)
	X448_AES256GCM_SHA512_Ed448            = CipherSuite(suite.MLS256DHKEMX448AES256GCMSHA512Ed448)
	P521_AES256GCM_SHA512_P521             = CipherSuite(suite.MLS256DHKEMP521AES256GCMSHA512P521)
	X448_CHACHA20POLY1305_SHA512_Ed448     = CipherSuite(suite.MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448)
	P384_AES256GCM_SHA384_P384             = CipherSuite(suite.MLS256DHKEMP384AES256GCMSHA384P384)
)

// SupportedCipherSuites lists every cipher suite this build implements.
func SupportedCipherSuites() []CipherSuite {
	var out []CipherSuite
	for _, id := range suite.Supported() {
		out = append(out, CipherSuite(id))
	}
	return out
}

func (cs CipherSuite) suite() (*suite.Suite, error) {
	s, err := suite.Lookup(suite.ID(cs))
	if err != nil {
		return nil, invalidCause(ErrUnsupported, err, "17.1", "cipher suite 0x%04x", uint16(cs))
	}
	return s, nil
}

// SignatureKeyPair is a member's signing key.
type SignatureKeyPair struct {
	cs     CipherSuite
	priv   []byte
	pub    []byte
	signer suite.Signer
}

// GenerateSignatureKeyPair makes a new signing key for cs from rand (nil
// means crypto/rand).
func GenerateSignatureKeyPair(cs CipherSuite, rand io.Reader) (*SignatureKeyPair, error) {
	s, err := cs.suite()
	if err != nil {
		return nil, err
	}
	if rand == nil {
		rand = (*Config)(nil).rand()
	}
	priv, _, err := s.GenerateSignatureKey(rand)
	if err != nil {
		return nil, err
	}
	return NewSignatureKeyPair(cs, priv)
}

// NewSignatureKeyPair loads a signing key from its private key bytes (the
// format of PrivateKey).
func NewSignatureKeyPair(cs CipherSuite, priv []byte) (*SignatureKeyPair, error) {
	s, err := cs.suite()
	if err != nil {
		return nil, err
	}
	signer, err := s.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	return &SignatureKeyPair{cs: cs, priv: bytes.Clone(priv), pub: signer.PublicKey(), signer: signer}, nil
}

// CipherSuite returns the suite the key belongs to.
func (k *SignatureKeyPair) CipherSuite() CipherSuite { return k.cs }

// PublicKey returns the SignaturePublicKey.
func (k *SignatureKeyPair) PublicKey() []byte { return bytes.Clone(k.pub) }

// PrivateKey returns the private key bytes, for storage. Handle with care.
func (k *SignatureKeyPair) PrivateKey() []byte { return bytes.Clone(k.priv) }

// String never prints the private key.
func (k *SignatureKeyPair) String() string { return "SignatureKeyPair{[redacted]}" }

func (k *SignatureKeyPair) sign(label string, content []byte) ([]byte, error) {
	return k.signer.SignWithLabel(label, content)
}

// KeyPackage is a client's published offer to be added to groups (RFC 9420,
// Section 10). It is immutable.
type KeyPackage struct {
	w   *wire.KeyPackage
	raw []byte // KeyPackage encoding, as received or as created
	// checked: verify() passed when it was parsed, so a commit adding it
	// by value does not verify its two signatures again. Its fields are
	// unexported: nothing changes them after.
	checked bool
}

// ParseKeyPackage decodes a KeyPackage sent as an MLSMessage (RFC 9420,
// Section 6) and checks what can be checked without a group: version,
// cipher suite support, signature, leaf source, and init_key differing from
// the leaf's encryption key (Section 10.1). Credential and lifetime checks
// happen when the KeyPackage is used.
func ParseKeyPackage(data []byte) (*KeyPackage, error) {
	m, err := wire.UnmarshalMLSMessage(bytes.Clone(data))
	if err != nil {
		return nil, err
	}
	if m.WireFormat != wire.WireFormatKeyPackage {
		return nil, invalid(ErrInvalidKeyPackage, "6", "message is a %v, not a key package", m.WireFormat)
	}
	kp := &KeyPackage{w: m.KeyPackage, raw: m.KeyPackage.Raw()}
	if m.KeyPackage.Version != m.Version {
		return nil, invalid(ErrInvalidKeyPackage, "10", "KeyPackage version differs from MLSMessage version")
	}
	if err := kp.verify(); err != nil {
		return nil, err
	}
	kp.checked = true
	return kp, nil
}

func keyPackageFromWire(w *wire.KeyPackage) *KeyPackage {
	raw := w.Raw()
	if raw == nil {
		raw, _ = codec.Marshal(w)
	}
	return &KeyPackage{w: w, raw: raw}
}

// verify runs the group-independent checks of RFC 9420, Section 10.1.
func (kp *KeyPackage) verify() error {
	w := kp.w
	if w.Version != wire.ProtocolVersionMLS10 {
		return invalid(ErrUnsupported, "10.1", "KeyPackage version %d", w.Version)
	}
	s, err := CipherSuite(w.CipherSuite).suite()
	if err != nil {
		return err
	}
	if w.LeafNode.LeafNodeSource != wire.LeafNodeSourceKeyPackage {
		return invalid(ErrInvalidKeyPackage, "10", "leaf_node_source is not key_package")
	}
	if err := s.VerifyWithLabel(w.LeafNode.SignatureKey, "KeyPackageTBS", w.TBS(), w.Signature); err != nil {
		return invalidCause(ErrInvalidKeyPackage, err, "10.1", "KeyPackage signature")
	}
	if err := s.VerifyWithLabel(w.LeafNode.SignatureKey, "LeafNodeTBS", w.LeafNode.TBS(nil, 0), w.LeafNode.Signature); err != nil {
		return invalidCause(ErrInvalidKeyPackage, err, "7.3", "leaf node signature")
	}
	if bytes.Equal(w.InitKey, w.LeafNode.EncryptionKey) {
		return invalid(ErrInvalidKeyPackage, "10.1", "init_key equals the leaf's encryption_key")
	}
	if err := s.ValidateKEMPublicKey(w.InitKey); err != nil {
		return invalidCause(ErrInvalidKeyPackage, err, "10", "init_key")
	}
	return nil
}

// Bytes returns the KeyPackage as an MLSMessage, ready to publish.
func (kp *KeyPackage) Bytes() []byte {
	b := codec.NewBuilder(nil)
	b.AddUint16(uint16(wire.ProtocolVersionMLS10))
	b.AddUint16(uint16(wire.WireFormatKeyPackage))
	b.AddBytes(kp.raw)
	out, _ := b.Bytes()
	return out
}

// CipherSuite returns the KeyPackage's cipher suite.
func (kp *KeyPackage) CipherSuite() CipherSuite { return CipherSuite(kp.w.CipherSuite) }

// Credential returns the credential of the KeyPackage's leaf.
func (kp *KeyPackage) Credential() Credential { return credentialFromWire(kp.w.LeafNode.Credential) }

// SignatureKey returns the leaf's signature public key.
func (kp *KeyPackage) SignatureKey() []byte { return bytes.Clone(kp.w.LeafNode.SignatureKey) }

// Lifetime returns the leaf's validity period.
func (kp *KeyPackage) Lifetime() (notBefore, notAfter time.Time) {
	lt := kp.w.LeafNode.Lifetime
	return time.Unix(int64(lt.NotBefore), 0), time.Unix(int64(lt.NotAfter), 0)
}

// IsLastResort reports whether the KeyPackage carries the
// last_resort_key_package component, so a delivery service may hand it out
// more than once (draft-ietf-mls-extensions, "Last-Resort KeyPackages").
func (kp *KeyPackage) IsLastResort() bool { return hasLastResort(kp.w.Extensions) }

// Ref returns the KeyPackageRef: RefHash("MLS 1.0 KeyPackage Reference",
// the KeyPackage as encoded) (RFC 9420, Section 5.2).
func (kp *KeyPackage) Ref() []byte {
	s, err := kp.CipherSuite().suite()
	if err != nil {
		return nil
	}
	return s.RefHash("MLS 1.0 KeyPackage Reference", kp.raw)
}

// Extension and component code points of draft-ietf-mls-extensions.
const (
	// ExtensionTypeAppDataDictionary is the app_data_dictionary extension
	// (suggested value 0x0006).
	ExtensionTypeAppDataDictionary = wire.ExtensionType(0x0006)
	// componentLastResort is the last_resort_key_package component.
	componentLastResort = 0x0004
)

// lastResortExtension is an app_data_dictionary holding one
// last_resort_key_package component with empty data:
// component_data<V> = [ {component_id: 0x0004, data: ""} ].
func lastResortExtension() wire.Extension {
	return wire.Extension{ExtensionType: ExtensionTypeAppDataDictionary, ExtensionData: []byte{0x03, 0x00, 0x04, 0x00}}
}

// hasLastResort looks for the last_resort_key_package component in an
// app_data_dictionary extension.
func hasLastResort(exts []wire.Extension) bool {
	for _, e := range exts {
		if e.ExtensionType != ExtensionTypeAppDataDictionary {
			continue
		}
		found := false
		ok := codec.Unmarshal(e.ExtensionData, func(r *codec.Reader) bool {
			return r.ReadList(func(r *codec.Reader) bool {
				var id uint16
				var data []byte
				if !r.ReadUint16(&id) || !r.ReadOpaque(&data) {
					return false
				}
				found = found || id == componentLastResort
				return true
			})
		})
		if ok && found {
			return true
		}
	}
	return false
}

// KeyPackageOptions tunes NewKeyPackage.
type KeyPackageOptions struct {
	// LastResort adds the last_resort marker.
	LastResort bool
	// Extensions are added to the KeyPackage's extensions (and their types to
	// the leaf's capabilities).
	Extensions []Extension
	// LeafExtensions are added to the leaf node.
	LeafExtensions []Extension
	// Capabilities, if non-nil, replaces the default capabilities. The
	// default lists this build's suites, Basic and X.509 credentials, the
	// last_resort extension, and random GREASE values (RFC 9420, Section 13.5).
	Capabilities *Capabilities
	// NoGREASE leaves GREASE values out.
	NoGREASE bool
}

// Extension is a typed opaque extension (RFC 9420, Section 7.2).
type Extension struct {
	Type uint16
	Data []byte
}

func extensionsToWire(xs []Extension) []wire.Extension {
	var out []wire.Extension
	for _, x := range xs {
		out = append(out, wire.Extension{ExtensionType: wire.ExtensionType(x.Type), ExtensionData: bytes.Clone(x.Data)})
	}
	return out
}

func extensionsFromWire(xs []wire.Extension) []Extension {
	var out []Extension
	for _, x := range xs {
		out = append(out, Extension{Type: uint16(x.ExtensionType), Data: bytes.Clone(x.ExtensionData)})
	}
	return out
}

// Capabilities is what a client supports (RFC 9420, Section 7.2). Default
// extension and proposal types (1-5 and 1-7) need not be listed.
type Capabilities struct {
	Versions     []uint16
	CipherSuites []CipherSuite
	Extensions   []uint16
	Proposals    []uint16
	Credentials  []CredentialType
}

func (c *Capabilities) toWire() wire.Capabilities {
	var w wire.Capabilities
	for _, v := range c.Versions {
		w.Versions = append(w.Versions, wire.ProtocolVersion(v))
	}
	for _, v := range c.CipherSuites {
		w.CipherSuites = append(w.CipherSuites, wire.CipherSuite(v))
	}
	for _, v := range c.Extensions {
		w.Extensions = append(w.Extensions, wire.ExtensionType(v))
	}
	for _, v := range c.Proposals {
		w.Proposals = append(w.Proposals, wire.ProposalType(v))
	}
	for _, v := range c.Credentials {
		w.Credentials = append(w.Credentials, wire.CredentialType(v))
	}
	return w
}

// greaseValues are the GREASE code points of RFC 9420, Section 13.5.
var greaseValues = [...]uint16{0x0A0A, 0x1A1A, 0x2A2A, 0x3A3A, 0x4A4A, 0x5A5A, 0x6A6A, 0x7A7A,
	0x8A8A, 0x9A9A, 0xAAAA, 0xBABA, 0xCACA, 0xDADA, 0xEAEA}

func pickGREASE(r io.Reader) uint16 {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return greaseValues[0]
	}
	return greaseValues[int(b[0])%len(greaseValues)]
}

// defaultCapabilities lists what mlskit supports, plus GREASE values.
func defaultCapabilities(cfg *Config, grease bool) wire.Capabilities {
	c := wire.Capabilities{
		Versions:    []wire.ProtocolVersion{wire.ProtocolVersionMLS10},
		Extensions:  []wire.ExtensionType{ExtensionTypeAppDataDictionary},
		Credentials: []wire.CredentialType{wire.CredentialTypeBasic, wire.CredentialTypeX509},
	}
	for _, id := range suite.Supported() {
		c.CipherSuites = append(c.CipherSuites, wire.CipherSuite(id))
	}
	if grease {
		r := cfg.rand()
		c.CipherSuites = append(c.CipherSuites, wire.CipherSuite(pickGREASE(r)))
		c.Extensions = append(c.Extensions, wire.ExtensionType(pickGREASE(r)))
		c.Proposals = append(c.Proposals, wire.ProposalType(pickGREASE(r)))
		c.Credentials = append(c.Credentials, wire.CredentialType(pickGREASE(r)))
	}
	return c
}

// KeyPackageBundle is a KeyPackage with the private keys needed to join a
// group from a Welcome that uses it. The private keys must be kept secret
// and deleted once the Welcome is processed (RFC 9420, Section 16.8), except
// for a last-resort KeyPackage.
type KeyPackageBundle struct {
	KeyPackage *KeyPackage
	InitKey    []byte // HPKE private key for init_key
	LeafKey    []byte // HPKE private key for leaf_node.encryption_key
	Signer     *SignatureKeyPair
}

// String never prints private keys.
func (b *KeyPackageBundle) String() string { return "KeyPackageBundle{[redacted]}" }

// Erase overwrites the bundle's private keys.
func (b *KeyPackageBundle) Erase() {
	clear(b.InitKey)
	clear(b.LeafKey)
}

// NewKeyPackage creates a signed KeyPackage for cred and sig (RFC 9420,
// Section 10) with fresh init and leaf keys.
func NewKeyPackage(cfg *Config, cred Credential, sig *SignatureKeyPair, opts *KeyPackageOptions) (*KeyPackageBundle, error) {
	cs := sig.cs
	s, err := cs.suite()
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &KeyPackageOptions{}
	}
	initPriv, initPub, err := s.GenerateKEMKey(cfg.rand())
	if err != nil {
		return nil, err
	}
	leafPriv, leafPub, err := s.GenerateKEMKey(cfg.rand())
	if err != nil {
		return nil, err
	}
	var caps wire.Capabilities
	if opts.Capabilities != nil {
		caps = opts.Capabilities.toWire()
	} else {
		caps = defaultCapabilities(cfg, !opts.NoGREASE)
	}
	if !slices.Contains(caps.CipherSuites, wire.CipherSuite(cs)) {
		caps.CipherSuites = append(caps.CipherSuites, wire.CipherSuite(cs))
	}
	lifetime, err := cfg.ownLifetime()
	if err != nil {
		return nil, err
	}
	leaf := wire.LeafNode{
		EncryptionKey:  leafPub,
		SignatureKey:   sig.pub,
		Credential:     cred.toWire(),
		Capabilities:   caps,
		LeafNodeSource: wire.LeafNodeSourceKeyPackage,
		Lifetime:       lifetime,
		Extensions:     extensionsToWire(opts.LeafExtensions),
	}
	for _, e := range append(slices.Clone(leaf.Extensions), extensionsToWire(opts.Extensions)...) {
		if e.ExtensionType > 5 && !slices.Contains(caps.Extensions, e.ExtensionType) {
			caps.Extensions = append(caps.Extensions, e.ExtensionType)
		}
	}
	leaf.Capabilities = caps
	if leaf.Signature, err = sig.sign("LeafNodeTBS", leaf.TBS(nil, 0)); err != nil {
		return nil, err
	}
	kp := &wire.KeyPackage{
		Version:     wire.ProtocolVersionMLS10,
		CipherSuite: wire.CipherSuite(cs),
		InitKey:     initPub,
		LeafNode:    leaf,
		Extensions:  extensionsToWire(opts.Extensions),
	}
	if opts.LastResort {
		if !slices.Contains(leaf.Capabilities.Extensions, ExtensionTypeAppDataDictionary) {
			return nil, errors.New("mls: last_resort needs app_data_dictionary in the capabilities")
		}
		kp.Extensions = append(kp.Extensions, lastResortExtension())
	}
	if kp.Signature, err = sig.sign("KeyPackageTBS", kp.TBS()); err != nil {
		return nil, err
	}
	raw, err := codec.Marshal(kp)
	if err != nil {
		return nil, err
	}
	// Re-decode so every part (leaf included) carries its received bytes.
	w, err := wire.UnmarshalKeyPackage(raw)
	if err != nil {
		return nil, err
	}
	return &KeyPackageBundle{
		KeyPackage: &KeyPackage{w: w, raw: raw},
		InitKey:    initPriv,
		LeafKey:    leafPriv,
		Signer:     sig,
	}, nil
}
