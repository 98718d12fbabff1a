package ratchettree

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns for a tree, leaf or
// path that breaks an RFC 9420 rule is a *ValidationError wrapping one of
// these; branch on them with errors.Is.
var (
	// ErrInvalidTree: a ratchet tree is malformed or fails validation
	// (RFC 9420, Sections 7.1, 7.8, 7.9, 12.4.3.1, 12.4.3.3).
	ErrInvalidTree = errors.New("mls: invalid ratchet tree")
	// ErrInvalidLeafNode: a LeafNode fails validation (RFC 9420, Section 7.3).
	ErrInvalidLeafNode = errors.New("mls: invalid leaf node")
	// ErrInvalidParentHash: a parent hash does not verify (RFC 9420,
	// Section 7.9.2).
	ErrInvalidParentHash = errors.New("mls: invalid parent hash")
	// ErrDuplicateKey: an encryption or signature key already appears in
	// the tree (RFC 9420, Sections 7.3 and 12.4.2).
	ErrDuplicateKey = errors.New("mls: duplicate key in ratchet tree")
	// ErrInvalidPath: an UpdatePath does not fit the tree or its secrets do
	// not match its public keys (RFC 9420, Sections 7.5, 7.6, 12.4.2).
	ErrInvalidPath = errors.New("mls: invalid update path")
	// ErrInvalidSignature: a LeafNode signature does not verify.
	ErrInvalidSignature = errors.New("mls: invalid signature")
	// ErrCredential: the application's CredentialValidator rejected a
	// credential. The validator's own error is wrapped as well.
	ErrCredential = errors.New("mls: credential rejected")
	// ErrNoPrivateKey: the private state lacks the key needed to decrypt
	// (the local state is inconsistent with the tree).
	ErrNoPrivateKey = errors.New("mls: no private key for node")
)

// ValidationError reports which check failed and where the RFC requires it.
// It never contains secret material.
type ValidationError struct {
	Check   string // what failed, e.g. "leaf signature"
	Section string // RFC 9420 section, e.g. "7.3"
	Err     error  // one of the sentinels above, possibly wrapping a cause
	Cause   error  // an underlying error (e.g. from the suite or validator), may be nil
}

func (e *ValidationError) Error() string {
	s := fmt.Sprintf("%v: %s (RFC 9420, Section %s)", e.Err, e.Check, e.Section)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause, so errors.Is matches either.
func (e *ValidationError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

func fail(sentinel error, section, format string, args ...any) error {
	return &ValidationError{Check: fmt.Sprintf(format, args...), Section: section, Err: sentinel}
}

func failCause(sentinel, cause error, section, format string, args ...any) error {
	return &ValidationError{Check: fmt.Sprintf(format, args...), Section: section, Err: sentinel, Cause: cause}
}
