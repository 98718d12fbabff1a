package framing

import (
	"errors"
	"fmt"

	"github.com/mlskit/mlskit/internal/secrettree"
)

// Sentinels for the checks of RFC 9420, Section 6 and Section 12.4.3.1.
// Every error that framing returns for a well-formed input that fails a check
// is a *ValidationError wrapping exactly one of these.
var (
	// ErrWrongGroup: the message's group_id is not the group's.
	ErrWrongGroup = errors.New("mls: message for another group")
	// ErrWrongEpoch: the message's epoch is not the group's current epoch.
	ErrWrongEpoch = errors.New("mls: message for another epoch")
	// ErrWrongWireFormat: the content may not travel in this wire format
	// (application data as a PublicMessage, a non-member sender in a
	// PrivateMessage).
	ErrWrongWireFormat = errors.New("mls: content not allowed in this wire format")
	// ErrInvalidSender: the sender type may not send this content (Section
	// 6.1, Section 12.1.8).
	ErrInvalidSender = errors.New("mls: sender may not send this content")
	// ErrUnknownSender: the sender is not a member (blank or out-of-tree
	// leaf), or names an external sender the group does not have.
	ErrUnknownSender = errors.New("mls: unknown sender")
	// ErrInvalidSignature: the FramedContent or GroupInfo signature does not
	// verify.
	ErrInvalidSignature = errors.New("mls: invalid signature")
	// ErrInvalidMembershipTag: a member's PublicMessage has a wrong
	// membership_tag.
	ErrInvalidMembershipTag = errors.New("mls: invalid membership tag")
	// ErrDecrypt: AEAD or HPKE decryption failed.
	ErrDecrypt = errors.New("mls: decryption failed")
	// ErrGenerationTooOld: the generation's key was erased when the
	// out-of-order window moved past it.
	ErrGenerationTooOld = errors.New("mls: generation too old")
	// ErrGenerationTooFarAhead: the generation is further ahead of the
	// sender's ratchet than the secret tree allows.
	ErrGenerationTooFarAhead = errors.New("mls: generation too far ahead")
	// ErrKeyReused: the generation's key was already used (a replay).
	ErrKeyReused = errors.New("mls: generation already used")
	// ErrBadPadding: a PrivateMessageContent has a non-zero padding octet;
	// the message is malformed (Section 6.3.1), so the error also matches
	// codec.ErrMalformed.
	ErrBadPadding = errors.New("mls: non-zero padding")
	// ErrNoGroupSecrets: a Welcome has no EncryptedGroupSecrets for our
	// KeyPackage.
	ErrNoGroupSecrets = errors.New("mls: welcome has no group secrets for this key package")
	// ErrCipherSuiteMismatch: the Welcome's, the KeyPackage's or the
	// GroupInfo's cipher suite differs from the one in use.
	ErrCipherSuiteMismatch = errors.New("mls: cipher suite mismatch")
)

// ValidationError reports a well-formed input that fails a check of RFC 9420.
// errors.Is matches both Err (a sentinel of this package) and, when there is
// one, the lower-level cause. The message names the check and the section,
// never key material or content.
type ValidationError struct {
	Check   string // what failed, e.g. "membership tag"
	Section string // the RFC 9420 section that requires the check, e.g. "6.2"
	Err     error  // one of the sentinels above
	Cause   error  // the underlying error, if any (suite, secrettree, codec)
}

func (e *ValidationError) Error() string {
	s := fmt.Sprintf("%v (failed check: %s, RFC 9420, Section %s)", e.Err, e.Check, e.Section)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause, for errors.Is and errors.As.
func (e *ValidationError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

func invalid(sentinel error, check, section string) *ValidationError {
	return &ValidationError{Check: check, Section: section, Err: sentinel}
}

func invalidCause(sentinel error, check, section string, cause error) *ValidationError {
	return &ValidationError{Check: check, Section: section, Err: sentinel, Cause: cause}
}

// treeError maps a secret tree failure for a receiver to this package's
// sentinels (RFC 9420, Sections 6.3.2, 9.2 and 15.3). Failures that are not
// about the peer's input (an erased tree, an exhausted ratchet) are returned
// wrapped as they are.
func treeError(err error) error {
	switch {
	case errors.Is(err, secrettree.ErrGenerationUsed):
		return invalidCause(ErrKeyReused, "generation not yet used", "9.2", err)
	case errors.Is(err, secrettree.ErrOutsideWindow):
		return invalidCause(ErrGenerationTooOld, "generation inside the out-of-order window", "15.3", err)
	case errors.Is(err, secrettree.ErrTooFarAhead):
		return invalidCause(ErrGenerationTooFarAhead, "generation within the forward limit", "15.3", err)
	case errors.Is(err, secrettree.ErrLeafOutOfRange):
		return invalidCause(ErrUnknownSender, "sender data leaf_index is a member", "6.3.2", err)
	}
	return fmt.Errorf("mls: secret tree: %w", err)
}
