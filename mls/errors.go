package mls

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/framing"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

// Errors callers branch on with errors.Is. Every error that input from a peer
// causes wraps exactly one class: ErrMalformed for bytes that do not decode,
// or one of the validation sentinels below inside a *ValidationError.
var (
	// ErrMalformed: the bytes are not a valid encoding (RFC 9420, Section 2.1).
	ErrMalformed = codec.ErrMalformed

	// ErrWrongGroup: the message belongs to another group.
	ErrWrongGroup = errors.New("mls: message for another group")
	// ErrWrongEpoch: the message's epoch is not one this group can process:
	// handshakes must be for the current epoch (Section 12.4.2); application
	// messages for the current one or one inside the retained window.
	ErrWrongEpoch = errors.New("mls: wrong epoch")
	// ErrInvalidSignature: a signature does not verify (Section 5.1.2).
	ErrInvalidSignature = errors.New("mls: invalid signature")
	// ErrInvalidMembershipTag: a PublicMessage membership tag does not verify
	// (Section 6.2).
	ErrInvalidMembershipTag = errors.New("mls: invalid membership tag")
	// ErrInvalidConfirmationTag: a confirmation tag does not verify (Section 6.1).
	ErrInvalidConfirmationTag = errors.New("mls: invalid confirmation tag")
	// ErrUnknownSender: the sender is not a member, or not an allowed external sender.
	ErrUnknownSender = errors.New("mls: unknown sender")
	// ErrDecrypt: a ciphertext did not decrypt.
	ErrDecrypt = errors.New("mls: decryption failed")
	// ErrKeyUnavailable: the message key was already used, was deleted when it
	// left the out-of-order window, or is too far ahead (Section 9.2).
	ErrKeyUnavailable = errors.New("mls: message key unavailable")
	// ErrInvalidProposal: a proposal or the list a commit carries breaks
	// Sections 12.1-12.3.
	ErrInvalidProposal = errors.New("mls: invalid proposal")
	// ErrInvalidCommit: a commit breaks Section 12.4.
	ErrInvalidCommit = errors.New("mls: invalid commit")
	// ErrInvalidTree: a ratchet tree, leaf node or update path fails validation
	// (Sections 7, 12.4.2 and 12.4.3.1).
	ErrInvalidTree = errors.New("mls: invalid ratchet tree")
	// ErrInvalidKeyPackage: a KeyPackage fails validation (Section 10.1).
	ErrInvalidKeyPackage = errors.New("mls: invalid key package")
	// ErrInvalidWelcome: a Welcome or its GroupInfo fails validation
	// (Section 12.4.3.1).
	ErrInvalidWelcome = errors.New("mls: invalid welcome")
	// ErrNoMatchingKeyPackage: a Welcome is not addressed to any KeyPackage
	// this client holds.
	ErrNoMatchingKeyPackage = errors.New("mls: welcome not addressed to us")
	// ErrMissingPSK: a pre-shared key named by a proposal or Welcome is not
	// available (Section 8.4).
	ErrMissingPSK = errors.New("mls: pre-shared key not available")
	// ErrCredentialRejected: the application's CredentialValidator refused a
	// credential (Section 5.3.1).
	ErrCredentialRejected = errors.New("mls: credential rejected")
	// ErrUnsupported: a cipher suite, version, extension or proposal type this
	// client does not support.
	ErrUnsupported = errors.New("mls: unsupported")
	// ErrRemoved: this member was removed from the group; it can no longer
	// send or process handshakes.
	ErrRemoved = errors.New("mls: removed from the group")
	// ErrGroupInactive: the group was reinitialised: it may not send, and
	// accepts no more commits (Section 11.2).
	ErrGroupInactive = errors.New("mls: group is inactive after ReInit")
	// ErrGroupExists: a Welcome is for a group_id this client already has a
	// group with; the stored group is kept (Section 12.4.3.1: group_id is
	// unique among a client's groups).
	ErrGroupExists = errors.New("mls: a group with this group_id already exists")
	// ErrNotAuthorized: the application's Config.ExternalProposals policy
	// did not authorize an external or new-member proposal (Section 12.1.8).
	ErrNotAuthorized = errors.New("mls: external proposal not authorized")
)

// Errors for API misuse.
var (
	// ErrPendingCommit: an own commit is pending; merge or discard it first.
	ErrPendingCommit = errors.New("mls: a commit is pending")
	// ErrNoPendingCommit: there is no own commit to merge.
	ErrNoPendingCommit = errors.New("mls: no pending commit")
	// ErrOwnMessage: the message was sent by this member; an own commit is
	// applied with MergePendingCommit, not processed.
	ErrOwnMessage = errors.New("mls: message sent by this member")
	// ErrPendingProposals: proposals were received in this epoch; RFC 9420,
	// Section 12.4 forbids sending application data before committing them.
	ErrPendingProposals = errors.New("mls: proposals pending: commit before sending application data")
)

// ValidationError is a well-formed input that breaks a rule of RFC 9420. It
// names the check and the section; Unwrap yields the class sentinel (and the
// underlying cause, if any). It never carries secret material.
type ValidationError struct {
	Check   string
	Section string
	Err     error // one of the sentinels above
	Cause   error // may be nil
}

func (e *ValidationError) Error() string {
	s := fmt.Sprintf("%v: %s", e.Err, e.Check)
	if e.Section != "" {
		s += " (RFC 9420, Section " + e.Section + ")"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause.
func (e *ValidationError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// DecodeError is the error for malformed input. It wraps ErrMalformed.
type DecodeError = wire.DecodeError

func invalid(sentinel error, section, format string, args ...any) error {
	return &ValidationError{Check: fmt.Sprintf(format, args...), Section: section, Err: sentinel}
}

func invalidCause(sentinel, cause error, section, format string, args ...any) error {
	return &ValidationError{Check: fmt.Sprintf(format, args...), Section: section, Err: sentinel, Cause: cause}
}

// classify maps an error from an internal layer to the public class it
// belongs to, so callers see one set of sentinels. Errors that already carry
// a public sentinel pass through.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, framing.ErrBadPadding) {
		// Malformed (RFC 9420, Section 6.3.1), but found after decryption,
		// so framing reports it as its own check: give it the public type
		// every malformed input has.
		return invalidCause(ErrMalformed, err, "6.3.1", "PrivateMessageContent padding is all zero")
	}
	for _, s := range []error{ErrMalformed, ErrWrongGroup, ErrWrongEpoch, ErrInvalidSignature,
		ErrInvalidMembershipTag, ErrInvalidConfirmationTag, ErrUnknownSender, ErrDecrypt, ErrKeyUnavailable,
		ErrInvalidProposal, ErrInvalidCommit, ErrInvalidTree, ErrInvalidKeyPackage, ErrInvalidWelcome,
		ErrNoMatchingKeyPackage, ErrMissingPSK, ErrCredentialRejected, ErrUnsupported, ErrRemoved,
		ErrGroupInactive, ErrGroupExists, ErrNotAuthorized} {
		if errors.Is(err, s) {
			return err
		}
	}
	var class error
	switch {
	case errors.Is(err, suite.ErrInvalidSignature), errors.Is(err, ratchettree.ErrInvalidSignature),
		errors.Is(err, framing.ErrInvalidSignature):
		class = ErrInvalidSignature
	case errors.Is(err, ratchettree.ErrCredential):
		class = ErrCredentialRejected
	case errors.Is(err, ratchettree.ErrInvalidTree), errors.Is(err, ratchettree.ErrInvalidLeafNode),
		errors.Is(err, ratchettree.ErrInvalidParentHash), errors.Is(err, ratchettree.ErrDuplicateKey),
		errors.Is(err, ratchettree.ErrInvalidPath), errors.Is(err, ratchettree.ErrNoPrivateKey):
		class = ErrInvalidTree
	case errors.Is(err, secrettree.ErrGenerationUsed), errors.Is(err, secrettree.ErrOutsideWindow),
		errors.Is(err, secrettree.ErrTooFarAhead), errors.Is(err, secrettree.ErrExhausted),
		errors.Is(err, secrettree.ErrErased), errors.Is(err, secrettree.ErrLeafOutOfRange):
		class = ErrKeyUnavailable
	case errors.Is(err, suite.ErrDecrypt):
		class = ErrDecrypt
	case errors.Is(err, suite.ErrUnsupported):
		class = ErrUnsupported
	case errors.Is(err, suite.ErrInvalidKey):
		class = ErrInvalidTree
	case errors.Is(err, framing.ErrWrongGroup):
		class = ErrWrongGroup
	case errors.Is(err, framing.ErrWrongEpoch):
		class = ErrWrongEpoch
	case errors.Is(err, framing.ErrInvalidMembershipTag):
		class = ErrInvalidMembershipTag
	case errors.Is(err, framing.ErrUnknownSender), errors.Is(err, framing.ErrInvalidSender),
		errors.Is(err, framing.ErrWrongWireFormat):
		class = ErrUnknownSender
	case errors.Is(err, framing.ErrGenerationTooOld), errors.Is(err, framing.ErrGenerationTooFarAhead),
		errors.Is(err, framing.ErrKeyReused):
		class = ErrKeyUnavailable
	case errors.Is(err, framing.ErrDecrypt):
		class = ErrDecrypt
	case errors.Is(err, framing.ErrNoGroupSecrets):
		class = ErrNoMatchingKeyPackage
	case errors.Is(err, framing.ErrCipherSuiteMismatch):
		class = ErrInvalidWelcome
	}
	if class == nil {
		return err
	}
	return &classified{class: class, err: err}
}

// classified attaches a public class to an internal error.
type classified struct {
	class error
	err   error
}

func (c *classified) Error() string {
	if c.err.Error() == c.class.Error() {
		return c.err.Error()
	}
	return c.class.Error() + ": " + c.err.Error()
}
func (c *classified) Unwrap() []error { return []error{c.class, c.err} }
