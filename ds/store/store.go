// Package store defines the narrow storage interface behind mlsd and the
// types and rules every engine shares: the record header and hash chain, the
// typed errors, and the semantics of the one atomic write, Append.
//
// # Engines
//
// ds/store/sqlite is the embedded default (WAL, synchronous=FULL);
// ds/store/postgres lets any number of stateless mlsd nodes share one
// database and wake each other's subscribers with LISTEN/NOTIFY. Both pass
// the conformance suite in ds/store/storetest. Both group-commit appends
// from concurrent callers into one transaction and one fsync (Batcher),
// deciding each as if it ran alone and answering none before the
// transaction committed.
//
// # Ordering (RFC 9750, Section 5.2.1)
//
// Each group has one log. Append gives every accepted record the next gapless
// sequence number and chains it: h_seq = SHA-256(h_{seq-1} || RecordHeader),
// so a client can detect reordering, gaps and forks. A commit is accepted
// only for the group's current epoch, and advances it: exactly one commit
// wins each epoch, enforced by the database (a unique key on group and
// epoch, under a lock on the group's head).
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mlskit/mlskit/ds/chain"
	"github.com/mlskit/mlskit/internal/codec"
)

// The record, its kinds and its hash chain live in ds/chain, which clients
// share without linking server code; these names keep the store's API.
const (
	KindApplication = chain.KindApplication
	KindProposal    = chain.KindProposal
	KindCommit      = chain.KindCommit
	KindWelcome     = chain.KindWelcome
)

// Record is one log entry as stored (see chain.Record).
type Record = chain.Record

// The chain's functions, under the names the engines use.
var (
	GenesisHash = chain.GenesisHash
	BodyHash    = chain.BodyHash
	HeaderBytes = chain.HeaderBytes
	ChainHash   = chain.ChainHash
	VerifyChain = chain.VerifyChain
	IsRecipient = chain.IsRecipient
)

// Limits on identifiers, checked by the server before they reach a store.
const (
	MaxGroupIDLen  = 255
	MaxClientIDLen = 255
)

// Sentinel errors. Engines return them (or the typed errors below, which
// wrap them) so the server can branch with errors.Is.
var (
	ErrNotFound   = errors.New("store: not found")
	ErrExists     = errors.New("store: already exists")
	ErrDuplicate  = errors.New("store: duplicate")
	ErrStaleEpoch = errors.New("store: stale epoch")
	ErrNotMember  = errors.New("store: not a member of the group")
	ErrDeferred   = errors.New("store: commit deferred for a starved member")
	ErrKeyBound   = errors.New("store: identity bound to another signature key")
)

// StaleEpochError answers a commit or message whose epoch is not accepted.
// WinningSeq is the sequence number of the commit that ended Epoch (zero when
// Epoch is not yet ended, i.e. it is in the future).
type StaleEpochError struct {
	Epoch        uint64 // the epoch the request named
	CurrentEpoch uint64
	WinningSeq   uint64
	WinningHash  []byte
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("store: epoch %d not accepted, group is at epoch %d (winning commit seq %d)", e.Epoch, e.CurrentEpoch, e.WinningSeq)
}
func (e *StaleEpochError) Unwrap() error { return ErrStaleEpoch }

// DuplicateError answers a record whose body was already accepted in the
// group, naming where: a retry after a lost answer learns its sequence number.
type DuplicateError struct{ Seq uint64 }

func (e *DuplicateError) Error() string { return fmt.Sprintf("store: duplicate of record %d", e.Seq) }
func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// DeferredError answers a commit held back while a starved member has
// priority for the epoch.
type DeferredError struct{ Until time.Time }

func (e *DeferredError) Error() string { return "store: commit deferred for a starved member" }
func (e *DeferredError) Unwrap() error { return ErrDeferred }

// Entry is one record to append.
type Entry struct {
	Kind       uint8
	WireFormat uint16
	Recipients []string // empty: every member
	Body       []byte
}

// Append is the one atomic write on a group (see Store.Append).
type Append struct {
	GroupID []byte
	Sender  string
	Epoch   uint64 // the epoch named in the message header
	// Commit makes this a commit bundle: Epoch must equal the group's
	// current epoch, which then advances by one. Entries[0] is the commit;
	// the rest are its Welcomes.
	Commit bool
	// Window is how many past epochs a non-commit may name (RFC 9750,
	// Section 5.2: a bounded window of old epochs for late messages).
	Window uint64
	// ExternalJoin lets a non-member's commit in and makes it a member
	// (RFC 9420, Section 12.4.3.2). The server sets it only after
	// validating the commit against the group's GroupInfo.
	ExternalJoin bool
	// UseClaims lists KeyPackageRefs whose claims by Sender this commit
	// uses up (its Welcomes went to their owners).
	UseClaims     [][]byte
	Entries       []Entry
	AddMembers    []string
	RemoveMembers []string
	GroupInfo     []byte // replaces the published GroupInfo when non-nil
	Now           time.Time
}

// Group is a group's head.
type Group struct {
	ID        []byte
	Epoch     uint64
	HeadSeq   uint64
	HeadHash  []byte
	GroupInfo []byte
	Policy    Policy
}

// Policy is how the server polices a group, fixed at creation.
type Policy struct {
	// PublicHandshakes: proposals and commits are PublicMessage, and the
	// server validates them with mls.PublicGroup before sequencing them.
	PublicHandshakes bool
	// ExternalJoins: non-members may read the GroupInfo and join with a
	// validated external commit.
	ExternalJoins bool
}

// Membership is one client's place in one group. A removed member keeps
// its row, with LeftSeq set to the commit that removed it, until it has
// acknowledged that commit: it receives the commit, then nothing more.
type Membership struct {
	GroupID  []byte
	ClientID string
	AckedSeq uint64
	// JoinedSeq is the record after which the member may read (the commit
	// that added it; 0 for the creator).
	JoinedSeq uint64
	// LeftSeq is the commit that removed the member, 0 while it is one.
	LeftSeq uint64
}

// Active reports whether the client is still a member.
func (m Membership) Active() bool { return m.LeftSeq == 0 }

// ClaimTTL is how long a claimed KeyPackage may be used in a Welcome.
const ClaimTTL = 7 * 24 * time.Hour

// Claim records that Claimer was handed Owner's KeyPackage Ref from the
// directory: the only way a Welcome for Ref reaches Owner.
type Claim struct {
	Ref     []byte
	Claimer string
	Owner   string
}

// KeyPackage is a stored KeyPackage.
type KeyPackage struct {
	Ref        []byte
	Owner      string
	Suite      uint16
	LastResort bool
	Data       []byte // the MLSMessage as uploaded
	NotAfter   time.Time
}

// Stock counts one owner's KeyPackages for one suite.
type Stock struct {
	Suite          uint16
	Count          int
	HasLastResort  bool
	LastResortUsed bool
}

// Session is an authenticated client session.
type Session struct {
	ClientID     string
	SignatureKey []byte
	Expires      time.Time
}

// Notification wakes subscribers: a group's log grew to Seq, or a client's
// memberships or KeyPackage stock changed (GroupID nil), or, with All,
// notifications may have been missed (an engine's listener has just
// (re)connected: what was sent while it was away is lost), so every
// subscriber must read its memberships and groups again.
type Notification struct {
	GroupID  []byte
	Seq      uint64
	ClientID string
	All      bool
}

// Store is what mlsd needs from a database. Every method is safe for
// concurrent use, and every write is atomic and durable when it returns nil.
type Store interface {
	// PutChallenge stores a single-use login challenge.
	PutChallenge(ctx context.Context, challenge []byte, expires time.Time) error
	// ConsumeChallenge deletes the challenge; ErrNotFound if it was never
	// issued, is used up or has expired, so a replayed login fails.
	ConsumeChallenge(ctx context.Context, challenge []byte, now time.Time) error
	// BindClientKey binds clientID to its signature key on first use and
	// returns ErrKeyBound if it is bound to a different key. Used for
	// credentials no CA vouches for (basic credentials).
	BindClientKey(ctx context.Context, clientID string, key []byte) error
	PutSession(ctx context.Context, tokenHash []byte, s Session) error
	// Session returns the live session for a token hash, or ErrNotFound.
	Session(ctx context.Context, tokenHash []byte, now time.Time) (Session, error)

	// PutKeyPackage stores a KeyPackage; ErrDuplicate if its ref is known.
	// A last-resort KeyPackage replaces the owner's previous one for the suite.
	PutKeyPackage(ctx context.Context, kp KeyPackage) error
	// ClaimKeyPackage atomically removes and returns one unexpired regular
	// KeyPackage of owner for suite, oldest first; only if none is left it
	// returns the last-resort one, which stays and is marked used.
	// ErrNotFound if there is neither. In the same transaction it records
	// the Claim (claimer, ref, owner) for ClaimTTL.
	ClaimKeyPackage(ctx context.Context, claimer, owner string, suite uint16, now time.Time) (KeyPackage, error)
	// Claims returns the unexpired claims of the given KeyPackageRefs.
	Claims(ctx context.Context, refs [][]byte, now time.Time) ([]Claim, error)
	KeyPackageStock(ctx context.Context, owner string, now time.Time) ([]Stock, error)

	// CreateGroup makes a group at epoch 0 with creator as its only member;
	// ErrExists if the id is taken.
	CreateGroup(ctx context.Context, groupID []byte, creator string, groupInfo []byte, policy Policy, now time.Time) (Group, error)
	Group(ctx context.Context, groupID []byte) (Group, error)
	// Head is Group without the GroupInfo (nil): what a reader of the
	// log's head needs, at the cost of one small row however large the
	// group's GroupInfo (it holds the ratchet tree).
	Head(ctx context.Context, groupID []byte) (Group, error)
	// Append atomically checks and appends, in this order: the group exists
	// (ErrNotFound); the sender is a member unless ExternalJoin
	// with LeftSeq 0 (ErrNotMember); the epoch (a *StaleEpochError: a commit must name the
	// current epoch, a non-commit one within Window of it); no starved
	// member holds priority (a *DeferredError); no entry's body was seen
	// in the group before (a *DuplicateError). Then it appends every entry
	// with the next sequence numbers and chain hashes and, for a commit,
	// advances the epoch, applies membership changes (added members start
	// after the commit; removed ones get LeftSeq = the commit), deletes the
	// UseClaims of Sender and replaces the GroupInfo. It returns the
	// appended records. On error nothing changes.
	Append(ctx context.Context, a Append) ([]Record, error)
	// Records returns up to limit records with seq > after, in order.
	Records(ctx context.Context, groupID []byte, after uint64, limit int) ([]Record, error)
	// CommitRecord returns the commit that ended epoch, or ErrNotFound.
	CommitRecord(ctx context.Context, groupID []byte, epoch uint64) (Record, error)
	// Membership returns a client's row (also a removed member's, until it
	// acknowledged its removal), or ErrNotMember.
	Membership(ctx context.Context, groupID []byte, clientID string) (Membership, error)
	// Memberships lists a client's rows, removed ones included.
	Memberships(ctx context.Context, clientID string) ([]Membership, error)
	// Members lists the current (not removed) members.
	Members(ctx context.Context, groupID []byte) ([]string, error)
	// Ack moves a member's cursor forward to seq (never back, never past
	// the head, for a removed member never past LeftSeq). A removed member
	// that acknowledged its removal loses its row.
	Ack(ctx context.Context, groupID []byte, clientID string, seq uint64) error
	// SetPriority gives clientID sole right to commit epoch until the given
	// time (commit fairness, RFC 9420, Section 14). It has no effect once
	// the epoch has passed.
	SetPriority(ctx context.Context, groupID []byte, clientID string, epoch uint64, until time.Time) error

	// Watch calls f for every notification from any node sharing the
	// store, until ctx ends. f must not block.
	Watch(ctx context.Context, f func(Notification)) error
	Close() error
}

// EncodeRecipients and DecodeRecipients store a recipient list as a vector
// of opaque<V> in one column.
func EncodeRecipients(rs []string) []byte {
	if len(rs) == 0 {
		return nil
	}
	b := codec.NewBuilder(nil)
	for _, c := range rs {
		b.AddOpaque([]byte(c))
	}
	out, _ := b.Bytes()
	return out
}

// DecodeRecipients is the inverse of EncodeRecipients.
func DecodeRecipients(b []byte) ([]string, error) {
	var out []string
	r := codec.NewReader(b)
	for !r.Empty() {
		var c []byte
		if !r.ReadOpaque(&c) {
			return nil, fmt.Errorf("store: corrupt recipient list: %w", codec.ErrMalformed)
		}
		out = append(out, string(c))
	}
	return out, nil
}
