package mls

import (
	"bytes"
	"crypto/rand"
	"io"
	"sync"
	"time"
)

// Config holds a client's policy. The zero value is usable: every field has a
// documented default. A Config must not be changed while groups use it.
type Config struct {
	// Rand is the source of randomness for keys, path secrets, nonces and
	// padding choices. nil means crypto/rand. Signing and HPKE encapsulation
	// always use crypto/rand (tests make those repeatable with
	// testing/cryptotest.SetGlobalRandom).
	Rand io.Reader

	// Now returns the current time, used for KeyPackage and leaf lifetimes
	// (RFC 9420, Section 7.3). nil means time.Now.
	Now func() time.Time

	// CredentialValidator decides whether credentials are acceptable
	// (RFC 9420, Section 5.3.1). nil accepts every Basic credential and
	// rejects every other type.
	CredentialValidator CredentialValidator

	// PublicHandshakes sends proposals and commits as PublicMessage instead of
	// the default PrivateMessage (handshake encryption hides membership
	// changes from the delivery service, RFC 9420, Section 6.3; RFC 9750,
	// Section 5.1). A receiver accepts both.
	PublicHandshakes bool

	// PastEpochs is how many previous epochs' message keys are kept so late
	// application messages still decrypt (RFC 9420, Section 9.2). 0 means
	// DefaultPastEpochs; negative keeps none.
	PastEpochs int

	// OutOfOrderTolerance and MaxForwardDistance bound the per-sender
	// generation window of the secret tree (RFC 9420, Section 9.2). 0 means
	// the secrettree defaults (5 and 1000).
	OutOfOrderTolerance int
	MaxForwardDistance  int

	// PaddingBlock pads the plaintext of every PrivateMessage up to a
	// multiple of this many bytes (RFC 9420, Section 15.1). 0 means
	// DefaultPaddingBlock; negative disables padding.
	PaddingBlock int

	// KeyPackageLifetime is the validity period of KeyPackages this client
	// creates (RFC 9420, Section 10). 0 means DefaultKeyPackageLifetime.
	KeyPackageLifetime time.Duration

	// MaxLeafLifetime rejects a peer's KeyPackage whose lifetime range is
	// longer than this (RFC 9420, Section 10.1 leaves the policy to the
	// application). 0 means no limit beyond checking the current time is inside it.
	MaxLeafLifetime time.Duration

	// ResumptionPSKs is how many past epochs' resumption PSKs are kept for
	// PreSharedKey proposals and branching (RFC 9420, Section 8.6). 0 means
	// DefaultResumptionPSKs.
	ResumptionPSKs int

	// PSKs supplies external pre-shared keys. nil means none.
	PSKs PSKStore

	// KeyUpdate says when this client should refresh its leaf and when
	// other members count as stale (RFC 9750, Sections 6 and 8.2.2; see
	// KeyUpdatePolicy). nil means the defaults.
	KeyUpdate *KeyUpdatePolicy

	// Padding, if set, replaces PaddingBlock with another padding policy
	// (PadToPowerOfTwo, PadToBuckets; RFC 9420, Section 15.1).
	Padding PaddingPolicy
}

// Defaults.
const (
	DefaultPastEpochs         = 3
	DefaultPaddingBlock       = 32
	DefaultKeyPackageLifetime = 90 * 24 * time.Hour
	DefaultResumptionPSKs     = 5
)

var defaultConfig Config

func (c *Config) orDefault() *Config {
	if c == nil {
		return &defaultConfig
	}
	return c
}

func (c *Config) rand() io.Reader {
	if c == nil || c.Rand == nil {
		return rand.Reader
	}
	return c.Rand
}

func (c *Config) now() time.Time {
	if c == nil || c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c *Config) pastEpochs() int {
	switch {
	case c == nil || c.PastEpochs == 0:
		return DefaultPastEpochs
	case c.PastEpochs < 0:
		return 0
	}
	return c.PastEpochs
}

func (c *Config) paddingBlock() int {
	switch {
	case c == nil || c.PaddingBlock == 0:
		return DefaultPaddingBlock
	case c.PaddingBlock < 0:
		return 0
	}
	return c.PaddingBlock
}

func (c *Config) keyPackageLifetime() time.Duration {
	if c == nil || c.KeyPackageLifetime <= 0 {
		return DefaultKeyPackageLifetime
	}
	return c.KeyPackageLifetime
}

func (c *Config) resumptionPSKs() int {
	if c == nil || c.ResumptionPSKs <= 0 {
		return DefaultResumptionPSKs
	}
	return c.ResumptionPSKs
}

func (c *Config) validator() CredentialValidator {
	if c == nil || c.CredentialValidator == nil {
		return BasicCredentialValidator{}
	}
	return c.CredentialValidator
}

func readRand(c *Config, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.rand(), b); err != nil {
		return nil, err
	}
	return b, nil
}

// PSKStore supplies external pre-shared keys by id (RFC 9420, Section 8.4).
type PSKStore interface {
	ExternalPSK(id []byte) (secret []byte, ok bool)
}

// PSKMap is a PSKStore held in memory. It is safe for concurrent use.
type PSKMap struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// Put stores secret under id.
func (p *PSKMap) Put(id, secret []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string][]byte{}
	}
	p.m[string(id)] = bytes.Clone(secret)
}

// ExternalPSK implements PSKStore.
func (p *PSKMap) ExternalPSK(id []byte) ([]byte, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	s, ok := p.m[string(id)]
	return s, ok
}

func (c *Config) externalPSK(id []byte) ([]byte, bool) {
	if c == nil || c.PSKs == nil {
		return nil, false
	}
	return c.PSKs.ExternalPSK(id)
}
