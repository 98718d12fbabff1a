// Package storage defines how an MLS client keeps its state: a small [Store]
// interface over opaque, versioned byte blobs, with every state change applied
// as one atomic [Batch].
//
// # Why opaque blobs
//
// The group layer owns the meaning and the encoding of what it stores (a
// group's public state, its current epoch secrets, the secrets it keeps for
// past epochs, the private keys of its KeyPackages). The store only keys and
// versions those blobs, so an engine needs no knowledge of MLS and a change
// to the group layer's encoding needs no change to any engine. The group
// layer versions its encodings with [Envelope].
//
// # Forward secrecy
//
// RFC 9420, Section 9.2 requires that a secret is deleted once it has been
// used, and Section 16.6 that deleted keys are not recoverable from storage.
// A Store therefore has one more duty than keeping bytes: when a Write
// deletes or replaces a value, the old bytes must not be recoverable from
// the engine's files afterwards. The SQLite engine proves this with a test
// that scans its files for a deleted secret; see docs/STORAGE.md.
//
// # Atomicity
//
// A Write either applies every part of its batch or none of it, even if the
// process is killed midway. The group layer relies on this to advance a
// group's state, record the message keys it consumed and drop the secrets of
// an old epoch in one step, so that a crash can never leave a message key
// usable twice or a group state that refers to secrets no longer stored.
//
// # Engines
//
//   - storage/memory: in-process, for tests and short-lived clients.
//   - storage/sqlite: a single SQLite file (pure Go, no cgo), durable and
//     crash safe.
//
// Both pass the conformance suite in storage/storagetest, which any other
// engine's tests should run too.
package storage

import (
	"context"
	"errors"
)

// Errors a Store returns. Engines wrap them (check with errors.Is); any other
// error is an engine failure (I/O, corruption) and is wrapped with %w.
var (
	// ErrNotFound means the requested record does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrClosed means the Store has been closed.
	ErrClosed = errors.New("storage: store is closed")
	// ErrInvalidBatch means a Batch breaks one of the rules documented on
	// Batch; nothing was written.
	ErrInvalidBatch = errors.New("storage: invalid batch")
)

// A Store keeps one client's MLS state. Every state change is one atomic
// Write.
//
// Values passed in are copied before Write returns, and values returned are
// fresh copies the caller owns; the caller may overwrite either. All methods
// are safe for concurrent use by multiple goroutines. After Close every
// method returns an error wrapping ErrClosed.
type Store interface {
	// LoadGroup returns the latest state written for the group and the epoch
	// it was written with, or an error wrapping ErrNotFound.
	LoadGroup(ctx context.Context, groupID []byte) (state []byte, epoch uint64, err error)

	// LoadEpoch returns the record kept for a past epoch of the group (the
	// secrets needed to process late messages of that epoch, RFC 9420,
	// Section 15.2, or a resumption PSK, Section 8.6), or an error wrapping
	// ErrNotFound.
	LoadEpoch(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error)

	// MessageKey returns a retained message key record (a key kept for an
	// out-of-order message, RFC 9420, Section 9.2) or an error wrapping
	// ErrNotFound.
	MessageKey(ctx context.Context, groupID []byte, epoch uint64, keyID []byte) ([]byte, error)

	// ListGroups returns the IDs of all stored groups in ascending byte order.
	ListGroups(ctx context.Context) ([][]byte, error)

	// Write applies the batch atomically: all of it or, on any error, none of
	// it. An invalid batch fails with an error wrapping ErrInvalidBatch; a
	// group-scoped change to a group that neither exists nor is created by
	// the batch fails with an error wrapping ErrNotFound.
	Write(ctx context.Context, b *Batch) error

	// KeyPackage returns the private record stored for a KeyPackage this
	// client published (its init and leaf private keys, RFC 9420, Section
	// 10), by KeyPackageRef, or an error wrapping ErrNotFound.
	KeyPackage(ctx context.Context, ref []byte) ([]byte, error)

	// PSK returns a pre-shared key by its ID (RFC 9420, Section 8.4) or an
	// error wrapping ErrNotFound.
	PSK(ctx context.Context, id []byte) ([]byte, error)

	// AppRecord returns a record the application keeps beside its MLS
	// state, by key, or an error wrapping ErrNotFound. The store gives these
	// records the same care as the rest (atomic writes, deleted values
	// unrecoverable), so an application can keep in one engine what belongs
	// with its groups: a client's identity and signature key, its cursors
	// in the delivery service's log.
	AppRecord(ctx context.Context, key []byte) ([]byte, error)

	// PendingCommit returns the group's own Commit that was sent but not yet
	// confirmed by the delivery service, or an error wrapping ErrNotFound.
	PendingCommit(ctx context.Context, groupID []byte) ([]byte, error)

	// DeleteGroup removes the group and everything scoped to it (state, past
	// epochs, message keys, pending commit) atomically, with the same
	// forward-secrecy guarantee as a Write that deletes. It returns an error
	// wrapping ErrNotFound if the group does not exist.
	DeleteGroup(ctx context.Context, groupID []byte) error

	// Close releases the store. Calling it again returns nil.
	Close() error
}

// A Batch is one atomic state change. Fields left nil or empty change
// nothing.
//
// Rules (a batch breaking one fails with ErrInvalidBatch):
//   - Every ID and key is non-empty, and every stored value is non-empty.
//   - The group-scoped fields (State, Epochs, DeleteEpochs, MessageKeys,
//     DeleteMessageKeys, PendingCommit, ClearPendingCommit) need GroupID.
//   - A record is named at most once per batch: not put twice, not put and
//     deleted, not set and cleared.
//
// Deleting a record that does not exist is not an error, so a retried batch
// is harmless. Deleting a past epoch also deletes the message keys kept for
// it.
type Batch struct {
	// GroupID names the group the group-scoped fields apply to.
	GroupID []byte
	// State, if non-nil, replaces the group's state (creating the group if
	// it does not exist), and Epoch is recorded with it.
	State []byte
	Epoch uint64

	// Epochs adds or replaces past-epoch records; DeleteEpochs removes them.
	Epochs       []EpochRecord
	DeleteEpochs []uint64

	// MessageKeys adds or replaces retained message keys; DeleteMessageKeys
	// removes consumed ones.
	MessageKeys       []MessageKeyRecord
	DeleteMessageKeys []MessageKeyID

	// PendingCommit, if non-nil, sets the group's pending own Commit;
	// ClearPendingCommit removes it.
	PendingCommit      []byte
	ClearPendingCommit bool

	// KeyPackages adds private KeyPackage records by KeyPackageRef;
	// DeleteKeyPackages removes used ones (RFC 9420, Section 16.8: a
	// KeyPackage's private keys are deleted once it has been used).
	KeyPackages       []Record
	DeleteKeyPackages [][]byte

	// PSKs adds pre-shared keys by PSK ID; DeletePSKs removes them.
	PSKs       []Record
	DeletePSKs [][]byte

	// AppRecords adds or replaces the application's own records by key;
	// DeleteAppRecords removes them. The store does not look inside them.
	AppRecords       []Record
	DeleteAppRecords [][]byte
}

// EpochRecord is the record kept for one past epoch of a group.
type EpochRecord struct {
	Epoch uint64
	Data  []byte
}

// MessageKeyID names one retained message key within a group.
type MessageKeyID struct {
	Epoch uint64
	// ID is chosen by the group layer, for example the sender's leaf index
	// and the generation.
	ID []byte
}

// MessageKeyRecord is one retained message key.
type MessageKeyRecord struct {
	MessageKeyID
	Data []byte
}

// Record is a keyed value outside any group.
type Record struct {
	Key   []byte
	Value []byte
}
