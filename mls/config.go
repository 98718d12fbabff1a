package mls

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
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

	// MaxLeafLifetime is the longest not_after - not_before this client
	// accepts for a LeafNode (RFC 9420, Section 7.2: the application MUST
	// set one). It applies in full to what this client creates and to the
	// KeyPackages it adds; leaves already in a tree it receives follow
	// StrictLeafLifetimes. 0 means DefaultMaxLeafLifetime; negative means
	// no limit.
	MaxLeafLifetime time.Duration

	// StrictLeafLifetimes rejects a received tree (Welcome, external join)
	// or a received commit's Add when a leaf's lifetime does not contain
	// the current time or exceeds MaxLeafLifetime. By default such a leaf
	// is tolerated and reported as a warning (StagedCommit.Warnings,
	// Group.JoinWarnings, ExternalJoinResult.Warnings): RFC 9420, Section
	// 7.3 only RECOMMENDS the check for received leaves, and enforcing it
	// strands a slow member behind an Add whose KeyPackage has since
	// expired, and every joiner of a group whose member never updated.
	// Leaves this client creates and KeyPackages it adds are always
	// checked (Sections 7.2 and 10.1).
	StrictLeafLifetimes bool

	// ExternalProposals authorizes proposals from outside the group: those
	// of an external sender listed in external_senders and new_member
	// Add proposals (RFC 9420, Section 12.1.8: unauthorized external
	// proposals are invalid). nil refuses them all, so that nobody who can
	// post to the delivery service is added by the next committer; see
	// AllowExternalProposals.
	ExternalProposals ExternalProposalPolicy

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
	// DefaultMaxLeafLifetime admits a KeyPackage valid for a year (the
	// longest default of deployed implementations) plus a day of backdating
	// for clock skew.
	DefaultMaxLeafLifetime = 366 * 24 * time.Hour
	DefaultResumptionPSKs  = 5
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

// maxLeafLifetime is MaxLeafLifetime with its default; 0 means no limit.
func (c *Config) maxLeafLifetime() time.Duration {
	switch {
	case c == nil || c.MaxLeafLifetime == 0:
		return DefaultMaxLeafLifetime
	case c.MaxLeafLifetime < 0:
		return 0
	}
	return c.MaxLeafLifetime
}

// ownLifetime is the lifetime of a leaf this client creates (a KeyPackage
// or a group creator's leaf): from an hour ago, for peers whose clocks are
// behind, for KeyPackageLifetime. It fails if that exceeds MaxLeafLifetime
// (RFC 9420, Section 7.2: never an unbounded lifetime of our own).
func (c *Config) ownLifetime() (wire.Lifetime, error) {
	now := c.now()
	lt := wire.Lifetime{NotBefore: uint64(now.Add(-time.Hour).Unix()), NotAfter: uint64(now.Add(c.keyPackageLifetime()).Unix())}
	if m := c.maxLeafLifetime(); m > 0 && c.keyPackageLifetime()+time.Hour > m {
		return wire.Lifetime{}, errors.New("mls: Config.KeyPackageLifetime (plus an hour of backdating) exceeds MaxLeafLifetime")
	}
	return lt, nil
}

// receivedPolicy relaxes p for leaves already in a tree this client
// receives, or Adds in a commit it processes: unless StrictLeafLifetimes,
// lifetimes are not enforced there but reported by lifetimeWarnings
// (RFC 9420, Section 7.3 RECOMMENDS, not requires, the check).
func (c *Config) receivedPolicy(p *ratchettree.Policy) *ratchettree.Policy {
	if c != nil && c.StrictLeafLifetimes {
		return p
	}
	q := *p
	q.Now, q.MaxLifetime = time.Time{}, 0
	return &q
}

// lifetimeProblem says what is wrong with a key_package leaf's lifetime
// under the strict rules (RFC 9420, Sections 7.2 and 7.3), or "".
func (c *Config) lifetimeProblem(leaf *wire.LeafNode) string {
	if leaf.LeafNodeSource != wire.LeafNodeSourceKeyPackage {
		return ""
	}
	lt := leaf.Lifetime
	if m := c.maxLeafLifetime(); m > 0 && lt.NotAfter >= lt.NotBefore && lt.NotAfter-lt.NotBefore > uint64(m/time.Second) {
		return "lifetime longer than MaxLeafLifetime"
	}
	now := c.now().Unix()
	if now < 0 || uint64(now) < lt.NotBefore || uint64(now) > lt.NotAfter {
		return "current time outside the lifetime"
	}
	return ""
}

// lifetimeWarning is the warning for a tolerated lifetime problem of the
// leaf at l, or nil.
func (c *Config) lifetimeWarning(leaf *wire.LeafNode, l treemath.LeafIndex) error {
	if c != nil && c.StrictLeafLifetimes {
		return nil // already enforced
	}
	if msg := c.lifetimeProblem(leaf); msg != "" {
		return invalid(ErrInvalidTree, "7.3", "leaf %d: %s (tolerated)", l, msg)
	}
	return nil
}

// treeLifetimeWarnings lists the tolerated lifetime problems of every
// leaf of a received tree.
func (c *Config) treeLifetimeWarnings(tree *ratchettree.Tree) []error {
	var out []error
	tree.Members(func(l treemath.LeafIndex, n *wire.LeafNode) bool {
		if w := c.lifetimeWarning(n, l); w != nil {
			out = append(out, w)
		}
		return true
	})
	return out
}

// ExternalProposalPolicy decides whether a proposal from outside the group
// is authorized (RFC 9420, Section 12.1.8): from an external sender
// (Sender.Type SenderExternal, Sender.Leaf its index in external_senders)
// or a new member asking to be added (SenderNewMemberProposal). It is
// asked when such a proposal arrives, when a commit carries it and when
// this client's Commit would include it. Return nil to authorize; an error
// refuses the proposal: Process fails with ErrNotAuthorized (wrapping the
// error), a received commit that includes it is rejected, and an own
// commit leaves it out. Every member should use the same policy, or
// members disagree on which commits are valid. It must not change the
// group.
type ExternalProposalPolicy interface {
	AuthorizeExternalProposal(groupID []byte, p *ProposalInfo) error
}

// ExternalProposalFunc adapts a function to ExternalProposalPolicy.
type ExternalProposalFunc func(groupID []byte, p *ProposalInfo) error

// AuthorizeExternalProposal implements ExternalProposalPolicy.
func (f ExternalProposalFunc) AuthorizeExternalProposal(groupID []byte, p *ProposalInfo) error {
	return f(groupID, p)
}

// AllowExternalProposals authorizes every external and new-member proposal
// (after the checks RFC 9420 requires of any proposal). Use it only where
// every party that can reach the group through the delivery service may
// add itself and, as a listed external sender, change the group.
var AllowExternalProposals ExternalProposalPolicy = ExternalProposalFunc(func([]byte, *ProposalInfo) error { return nil })

// errNoExternalPolicy is the reason a proposal is refused when no
// ExternalProposalPolicy is set.
var errNoExternalPolicy = errors.New("mls: no Config.ExternalProposals policy authorizes it")

// authorizeExternal applies ExternalProposals to a proposal sent by an
// external sender or a new member; proposals of members pass.
func (c *Config) authorizeExternal(groupID []byte, info *ProposalInfo) error {
	if info.Sender.Type != SenderExternal && info.Sender.Type != SenderNewMemberProposal {
		return nil
	}
	var err error
	if c == nil || c.ExternalProposals == nil {
		err = errNoExternalPolicy
	} else {
		err = c.ExternalProposals.AuthorizeExternalProposal(bytes.Clone(groupID), info)
	}
	if err != nil {
		return invalidCause(ErrNotAuthorized, err, "12.1.8", "%v proposal from a %v sender not authorized", wire.ProposalType(info.Type), wire.SenderType(info.Sender.Type))
	}
	return nil
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
