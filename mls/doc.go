// Package mls is Messaging Layer Security (RFC 9420) for Go: end-to-end
// encrypted groups of two up to tens of thousands of members.
//
// # Identities and KeyPackages
//
// A client has a signing key (GenerateSignatureKeyPair) and a Credential
// (BasicCredential or X509Credential). To be added to groups while offline it
// publishes KeyPackages (NewKeyPackage) through a delivery service and keeps
// each KeyPackageBundle's private keys until a Welcome uses them.
//
// # Groups
//
// NewGroup creates a group; Commit adds, removes and updates members
// (CommitOptions.Proposals with AddProposal, RemoveProposal, ...), and joiners
// call JoinFromWelcome with the Welcome the commit produced. Members send
// proposals (ProposeAdd, ProposeUpdate, ProposeRemove, ProposeExternalPSK,
// ProposeResumptionPSK, ProposeGroupContextExtensions, ProposeReInit,
// ProposeCustom), commit them, and exchange application messages with
// Encrypt and Process. Outsiders join by ExternalJoin from a GroupInfo, and
// external senders propose with ExternalProposal. ReInitGroup and Branch
// start successor groups tied to the old one by a resumption PSK.
//
// # Stage, then merge
//
// Nothing changes a group's epoch until the caller says so. Process returns
// a StagedCommit for a commit, which the caller can inspect (who was added,
// updated and removed, which PSKs were used) before MergeStagedCommit.
// A member's own Commit stays pending until MergePendingCommit (after the
// delivery service accepted it) or DiscardPendingCommit (when another
// commit won the epoch). A call that fails leaves the group as it was: a
// PrivateMessage's key is consumed only once the message has decrypted and
// its signature verified. A PrivateMessage that decrypts and verifies but is
// then refused (a commit naming a PSK this member lacks, or whose
// confirmation tag does not match) has used its key, which RFC 9420,
// Section 9.2 deletes once used, so the same message cannot be processed
// again; the sender must send anew.
//
// # Handshake encryption
//
// Proposals and commits are sent as PrivateMessage by default, so the
// delivery service cannot see membership changes (RFC 9420, Section 6.3);
// Config.PublicHandshakes sends them as PublicMessage, which a PublicGroup
// (the delivery service's secret-free view) can follow and validate.
//
// # Errors
//
// Malformed input fails with an error matching ErrMalformed (a *DecodeError
// naming the type and byte offset). Well-formed input that breaks a rule of
// RFC 9420 fails with a *ValidationError naming the check and the section,
// matching one sentinel: ErrWrongEpoch, ErrWrongGroup, ErrInvalidSignature,
// ErrInvalidMembershipTag, ErrInvalidConfirmationTag, ErrUnknownSender,
// ErrDecrypt, ErrKeyUnavailable, ErrInvalidProposal, ErrInvalidCommit,
// ErrInvalidTree, ErrInvalidKeyPackage, ErrInvalidWelcome,
// ErrNoMatchingKeyPackage, ErrMissingPSK, ErrCredentialRejected,
// ErrUnsupported. Branch with errors.Is. No error text contains secrets.
//
// # Randomness and time
//
// Config.Rand and Config.Now are the only sources of randomness and time
// the package reads for keys, secrets and lifetimes; signing and HPKE
// encapsulation use crypto/rand, which testing/cryptotest.SetGlobalRandom
// makes repeatable in tests.
package mls
