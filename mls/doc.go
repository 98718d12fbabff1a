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
// # Policies the application chooses
//
// RFC 9420 leaves some decisions to the application. Each is a Config
// field whose zero value is the choice a careful messenger would make:
//
//   - Leaf lifetimes (Sections 7.2, 7.3, 10.1). MaxLeafLifetime bounds
//     not_after - not_before (default DefaultMaxLeafLifetime, a year and a
//     day); KeyPackageLifetime (default 90 days) sets the lifetime of the
//     KeyPackages and the group creator's leaf this client makes, never
//     more than the maximum. Lifetimes are enforced on everything this
//     client creates and on every KeyPackage it adds. A leaf already in a
//     tree it receives (a Welcome's or GroupInfo's tree) and an Add in a
//     commit it processes are only checked if StrictLeafLifetimes is set:
//     by default a problem there is tolerated and reported in
//     Group.JoinWarnings, ExternalJoinResult.Warnings or
//     StagedCommit.Warnings, because refusing would cut off a member that
//     processes an Add after the KeyPackage expired, and make a group
//     unjoinable once any member goes long without updating.
//   - External proposals (Section 12.1.8). Proposals from an external
//     sender listed in external_senders, and Adds a client sends to ask to
//     join (NewMemberAddProposal), are refused unless ExternalProposals
//     authorizes them: with no policy, whoever can post to the delivery
//     service could otherwise be added by the next committer. A refused
//     proposal fails Process with ErrNotAuthorized and is not cached; a
//     commit that includes one is rejected. AllowExternalProposals admits
//     all; ExternalProposalFunc decides per proposal. Members should share
//     one policy.
//   - Which proposals to commit (Section 12.4). Commit includes the cached
//     proposals that keep the list valid and leaves out the rest (a PSK
//     this client lacks, a KeyPackage added twice, an expired KeyPackage,
//     an Update of a member another proposal removes, ...), reporting
//     each in CommitResult.Dropped with its reason. Someone else's
//     proposal never makes Commit fail, so Encrypt, which waits for
//     received proposals to be committed, is never held up for good.
//   - Group ids (Section 12.4.3.1). JoinFromStore, and JoinFromWelcome
//     given JoinOptions.Store, refuse a Welcome for a group_id the client
//     already has (ErrGroupExists) rather than replace that group; delete
//     the old group first to rejoin.
//   - Resumption (Section 11). A branch may only add members of the
//     original group, and a ReInit must keep exactly the members; the
//     application's SuccessorValidator says when two credentials name the
//     same client (by default: the same Basic identity or X.509 subject).
//     After the commit covering a ReInit, the old group neither sends nor
//     processes commits (ErrGroupInactive).
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
// ErrUnsupported, ErrGroupInactive, ErrGroupExists, ErrNotAuthorized.
// Branch with errors.Is. No error text contains secrets.
//
// # Randomness and time
//
// Config.Rand and Config.Now are the only sources of randomness and time
// the package reads for keys, secrets and lifetimes; signing and HPKE
// encapsulation use crypto/rand, which testing/cryptotest.SetGlobalRandom
// makes repeatable in tests.
package mls
