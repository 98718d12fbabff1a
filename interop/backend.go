package interop

import "context"

// Backend is the MLS implementation behind the interop server. Each RPC of the
// MLSClient service maps to exactly one Go method, named like the RPC, on one
// of four types:
//
//   - Backend: the RPCs that need no prior object (Name, SupportedCiphersuites,
//     CreateGroup, CreateKeyPackage, ExternalJoin, NewMemberAddProposal,
//     CreateExternalSigner).
//   - State: the RPCs that take a state_id (one member's view of one group).
//   - Transaction: the RPCs that take a transaction_id (a KeyPackage waiting
//     for its Welcome): JoinGroup, and StorePSK before the join.
//   - ReInit: the RPCs that take a reinit_id (ReInitWelcome, HandleReInitWelcome).
//   - Signer: ExternalSignerProposal, which takes a signer_id.
//
// Free, and the numbering of states, transactions, reinits and signers, are
// the Server's business: a backend only returns Go values, and the Server
// hands out the ids. The Server serializes calls on one object (never two
// calls at once on the same State, Transaction, ReInit or Signer), but calls
// on different objects, and the Backend's own methods, run concurrently: what
// objects share must be safe for concurrent use.
//
// Error contract: a method returns an error wrapping one of ErrNotImplemented,
// ErrInvalidArgument or ErrFailedPrecondition when it can classify the
// failure, so that the Server reports the right gRPC status code; other errors
// are reported as codes.Unknown. Error text goes to the test runner: it must
// never contain a secret. A failed call must leave its object exactly as it
// was (RFC 9420 processing is all-or-nothing), so that the runner can go on.
//
// Byte slices passed in belong to the caller for the duration of the call;
// a backend that keeps one must copy it. Byte slices returned are not
// modified afterwards.
//
// Cipher suites are RFC 9420 CipherSuite values (Section 17.1) and extension
// types ExtensionType values (Section 17.3); the Server rejects wire values
// that do not fit in 16 bits before calling the backend.
type Backend interface {
	// Name is the human-readable name of the stack (RPC Name).
	Name() string

	// SupportedCiphersuites lists the cipher suites the backend can run
	// (RPC SupportedCiphersuites). An empty list is valid: the test runner
	// then runs nothing against this client.
	SupportedCiphersuites() []uint16

	// CreateGroup creates a one-member group (RPC CreateGroup; RFC 9420,
	// Section 11) with a Basic credential for req.Identity.
	CreateGroup(ctx context.Context, req CreateGroupRequest) (State, error)

	// CreateKeyPackage makes a KeyPackage (RPC CreateKeyPackage; RFC 9420,
	// Section 10) and keeps its private keys in the returned Transaction until
	// a Welcome arrives.
	CreateKeyPackage(ctx context.Context, req CreateKeyPackageRequest) (Transaction, KeyPackageResult, error)

	// ExternalJoin joins a group with an external Commit (RPC ExternalJoin;
	// RFC 9420, Section 12.4.3.2).
	ExternalJoin(ctx context.Context, req ExternalJoinRequest) (State, ExternalJoinResult, error)

	// NewMemberAddProposal makes a self-signed Add proposal from a
	// prospective member (RPC NewMemberAddProposal; RFC 9420, Section
	// 12.1.8); the Transaction then waits for the Welcome like one from
	// CreateKeyPackage.
	NewMemberAddProposal(ctx context.Context, req NewMemberAddProposalRequest) (Transaction, NewMemberAddProposalResult, error)

	// CreateExternalSigner makes a signing identity for an external sender
	// (RPC CreateExternalSigner; RFC 9420, Section 12.1.8.1) and returns it
	// with its encoded ExternalSender.
	CreateExternalSigner(ctx context.Context, req CreateExternalSignerRequest) (Signer, []byte, error)
}

// State is one member's view of one group: the object a state_id names. The
// methods that move the group to a new epoch (HandleCommit,
// HandlePendingCommit) update the State in place; methods that make a
// different group (CreateBranch, HandleBranch) return a new State and leave
// this one as it was.
type State interface {
	// GroupInfo returns a signed GroupInfo (RFC 9420, Section 12.4.3); with
	// externalTree the ratchet tree is returned separately instead of in a
	// ratchet_tree extension.
	GroupInfo(ctx context.Context, externalTree bool) (GroupInfoResult, error)

	// StateAuth returns the epoch's authentication secret
	// (epoch_authenticator; RFC 9420, Section 8.7).
	StateAuth(ctx context.Context) ([]byte, error)

	// Export returns MLS-Exporter(label, context, length) (RFC 9420,
	// Section 8.5).
	Export(ctx context.Context, label string, context []byte, length int) ([]byte, error)

	// Protect encrypts application data as a PrivateMessage (RFC 9420,
	// Section 6.3) and returns the encoded MLSMessage.
	Protect(ctx context.Context, authenticatedData, plaintext []byte) ([]byte, error)

	// Unprotect decrypts an MLSMessage holding application data.
	Unprotect(ctx context.Context, ciphertext []byte) (authenticatedData, plaintext []byte, err error)

	// StorePSK remembers an external PSK (RFC 9420, Section 8.4).
	StorePSK(ctx context.Context, id, secret []byte) error

	// The proposal RPCs return an encoded MLSMessage holding the proposal
	// (RFC 9420, Section 12.1), and remember it so that a later Commit by
	// this member includes it.
	AddProposal(ctx context.Context, keyPackage []byte) ([]byte, error)
	UpdateProposal(ctx context.Context) ([]byte, error)
	// RemoveProposal removes the member whose credential identity is
	// removedIdentity.
	RemoveProposal(ctx context.Context, removedIdentity []byte) ([]byte, error)
	ExternalPSKProposal(ctx context.Context, pskID []byte) ([]byte, error)
	ResumptionPSKProposal(ctx context.Context, epoch uint64) ([]byte, error)
	GroupContextExtensionsProposal(ctx context.Context, extensions []Extension) ([]byte, error)
	ReInitProposal(ctx context.Context, req ReInitProposalRequest) ([]byte, error)
	// AddExternalSigner proposes a GroupContextExtensions proposal that adds
	// externalSender to the external_senders extension (RFC 9420,
	// Section 12.1.8.1).
	AddExternalSigner(ctx context.Context, externalSender []byte) ([]byte, error)

	// Commit creates a Commit over req (RFC 9420, Section 12.4) without
	// applying it: HandlePendingCommit applies it.
	Commit(ctx context.Context, req CommitRequest) (CommitResult, error)

	// HandleCommit processes proposals (each an encoded MLSMessage) and then
	// a Commit from another member, moving to the next epoch; it returns the
	// new epoch_authenticator.
	HandleCommit(ctx context.Context, proposals [][]byte, commit []byte) ([]byte, error)

	// HandlePendingCommit applies this member's own pending Commit and
	// returns the new epoch_authenticator; with no pending Commit it fails
	// with ErrFailedPrecondition.
	HandlePendingCommit(ctx context.Context) ([]byte, error)

	// ReInitCommit commits a ReInit proposal (RFC 9420, Section 11.2).
	ReInitCommit(ctx context.Context, req CommitRequest) (CommitResult, error)

	// HandlePendingReInitCommit and HandleReInitCommit are the ReInit forms
	// of HandlePendingCommit and HandleCommit: the old group ends, and the
	// returned ReInit holds what the member needs to join the new one,
	// including a fresh KeyPackage in the new cipher suite.
	HandlePendingReInitCommit(ctx context.Context) (ReInit, ReInitResult, error)
	HandleReInitCommit(ctx context.Context, proposals [][]byte, commit []byte) (ReInit, ReInitResult, error)

	// CreateBranch creates a subgroup with the given members' KeyPackages
	// and a branch PSK from this group (RFC 9420, Section 11.3).
	CreateBranch(ctx context.Context, req CreateBranchRequest) (State, SubgroupResult, error)

	// HandleBranch joins the branch of this group that welcome creates,
	// using the KeyPackage of tx; it returns the new group's State and its
	// epoch_authenticator.
	HandleBranch(ctx context.Context, tx Transaction, welcome, ratchetTree []byte) (State, []byte, error)
}

// Transaction is a prospective member waiting for a Welcome: the object a
// transaction_id names. A successful JoinGroup or HandleBranch uses it up
// (a KeyPackage's private keys serve one join: RFC 9420, Section 16.8), and
// the Server then forgets its id.
type Transaction interface {
	// StorePSK remembers an external PSK that the Welcome may use.
	StorePSK(ctx context.Context, id, secret []byte) error

	// JoinGroup processes a Welcome (RFC 9420, Section 12.4.3.1) and returns
	// the new State and its epoch_authenticator.
	JoinGroup(ctx context.Context, req JoinGroupRequest) (State, []byte, error)
}

// ReInit is a member between the ReInit Commit of an old group and the
// Welcome of the new one (RFC 9420, Section 11.2): the object a reinit_id
// names. A successful ReInitWelcome or HandleReInitWelcome uses it up.
type ReInit interface {
	// ReInitWelcome creates the new group with the other members'
	// KeyPackages and a resumption PSK of usage reinit.
	ReInitWelcome(ctx context.Context, req ReInitWelcomeRequest) (State, SubgroupResult, error)

	// HandleReInitWelcome joins the new group.
	HandleReInitWelcome(ctx context.Context, welcome, ratchetTree []byte) (State, []byte, error)
}

// Signer is an external sender's signing identity: the object a signer_id
// names.
type Signer interface {
	// ExternalSignerProposal creates a proposal signed by this external
	// sender (RFC 9420, Section 12.1.8.1) for the group that groupInfo
	// (and ratchetTree, when not inside it) describes.
	ExternalSignerProposal(ctx context.Context, req ExternalSignerProposalRequest) ([]byte, error)
}

// Extension is an RFC 9420 Extension (Section 13).
type Extension struct {
	Type uint16
	Data []byte
}

// PSK is an external pre-shared key given to ExternalJoin.
type PSK struct {
	ID, Secret []byte
}

// CreateGroupRequest holds the inputs of RPC CreateGroup.
type CreateGroupRequest struct {
	GroupID          []byte
	CipherSuite      uint16
	EncryptHandshake bool // send handshake messages as PrivateMessage
	Identity         []byte
}

// CreateKeyPackageRequest holds the inputs of RPC CreateKeyPackage.
type CreateKeyPackageRequest struct {
	CipherSuite uint16
	Identity    []byte
}

// KeyPackageResult is the output of CreateKeyPackage. The private keys are
// secrets that the interop protocol asks for (the passive-client tests
// replay them); they are returned only to the test runner.
type KeyPackageResult struct {
	KeyPackage     []byte // an encoded MLSMessage holding the KeyPackage
	InitPriv       []byte
	EncryptionPriv []byte
	SignaturePriv  []byte
}

// JoinGroupRequest holds the inputs of RPC JoinGroup.
type JoinGroupRequest struct {
	Welcome          []byte
	EncryptHandshake bool
	Identity         []byte
	RatchetTree      []byte // empty when the Welcome carries the tree
}

// ExternalJoinRequest holds the inputs of RPC ExternalJoin.
type ExternalJoinRequest struct {
	GroupInfo        []byte
	RatchetTree      []byte // empty when the GroupInfo carries the tree
	EncryptHandshake bool
	Identity         []byte
	RemovePrior      bool // remove the joiner's earlier leaf (RFC 9420, Section 12.4.3.2)
	PSKs             []PSK
}

// ExternalJoinResult is the output of ExternalJoin.
type ExternalJoinResult struct {
	Commit             []byte
	EpochAuthenticator []byte
}

// GroupInfoResult is the output of State.GroupInfo.
type GroupInfoResult struct {
	GroupInfo   []byte
	RatchetTree []byte // empty unless an external tree was asked for
}

// ProposalType names a proposal in a ProposalDescription, as the interop
// protocol spells it.
type ProposalType string

// The proposal types of the interop protocol. ProposalReInit is used only by
// Signer.ExternalSignerProposal.
const (
	ProposalAdd                    ProposalType = "add"
	ProposalRemove                 ProposalType = "remove"
	ProposalExternalPSK            ProposalType = "externalPSK"
	ProposalResumptionPSK          ProposalType = "resumptionPSK"
	ProposalGroupContextExtensions ProposalType = "groupContextExtensions"
	ProposalReInit                 ProposalType = "reinit"
)

// ProposalDescription describes a proposal to be made by value in a Commit,
// or by an external signer. Only the fields of its Type are set.
type ProposalDescription struct {
	Type        ProposalType
	KeyPackage  []byte      // add
	RemovedID   []byte      // remove: the removed member's identity
	PSKID       []byte      // externalPSK
	EpochID     uint64      // resumptionPSK
	Extensions  []Extension // groupContextExtensions, reinit
	GroupID     []byte      // reinit
	CipherSuite uint16      // reinit
}

// CommitRequest holds the inputs of RPCs Commit and ReInitCommit.
type CommitRequest struct {
	ByReference  [][]byte // proposals (encoded MLSMessages) from other senders
	ByValue      []ProposalDescription
	ForcePath    bool // include an UpdatePath even when not required
	ExternalTree bool // leave the ratchet tree out of the Welcome and return it
}

// CommitResult is the output of Commit and ReInitCommit.
type CommitResult struct {
	Commit      []byte
	Welcome     []byte // empty when nobody is added
	RatchetTree []byte // empty unless CommitRequest.ExternalTree
}

// ReInitProposalRequest holds the inputs of RPC ReInitProposal.
type ReInitProposalRequest struct {
	CipherSuite uint16
	GroupID     []byte
	Extensions  []Extension
}

// ReInitResult is the output of HandlePendingReInitCommit and
// HandleReInitCommit.
type ReInitResult struct {
	KeyPackage         []byte // for the new group, in its cipher suite
	EpochAuthenticator []byte // of the old group's last epoch
}

// ReInitWelcomeRequest holds the inputs of RPC ReInitWelcome.
type ReInitWelcomeRequest struct {
	KeyPackages  [][]byte
	ForcePath    bool
	ExternalTree bool
}

// CreateBranchRequest holds the inputs of RPC CreateBranch.
type CreateBranchRequest struct {
	GroupID      []byte
	Extensions   []Extension
	KeyPackages  [][]byte
	ForcePath    bool
	ExternalTree bool
}

// SubgroupResult is the output of CreateBranch and ReInitWelcome.
type SubgroupResult struct {
	Welcome            []byte
	RatchetTree        []byte // empty unless an external tree was asked for
	EpochAuthenticator []byte
}

// NewMemberAddProposalRequest holds the inputs of RPC NewMemberAddProposal.
type NewMemberAddProposalRequest struct {
	GroupInfo []byte
	Identity  []byte
}

// NewMemberAddProposalResult is the output of NewMemberAddProposal; the
// private keys are secrets returned only to the test runner.
type NewMemberAddProposalResult struct {
	Proposal       []byte
	InitPriv       []byte
	EncryptionPriv []byte
	SignaturePriv  []byte
}

// CreateExternalSignerRequest holds the inputs of RPC CreateExternalSigner.
type CreateExternalSignerRequest struct {
	CipherSuite uint16
	Identity    []byte
}

// ExternalSignerProposalRequest holds the inputs of RPC
// ExternalSignerProposal.
type ExternalSignerProposalRequest struct {
	SignerIndex uint32 // index of the signer in the group's external_senders
	GroupInfo   []byte
	RatchetTree []byte
	Description ProposalDescription
}
