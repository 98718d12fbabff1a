package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
)

// This file is the seam between the interop server and mlskit's group state
// machine, package mls: NewMLSBackend and the RPCs that need no prior
// object. mlsbackend_state.go has the State (one member's group) and
// mlsbackend_objects.go the Transaction, ReInit and Signer.
//
// Every object is built from package mls's public API, plus the few
// functions of mls/interop_support.go. Handshakes are PrivateMessage or
// PublicMessage as encrypt_handshake says (mls.Config.PublicHandshakes), and
// every credential is accepted (mls.AcceptAllCredentials): the test runner
// has no authentication service, and members are Basic credentials named
// after the script's actors.

// MLSBackendOptions tunes NewMLSBackendWith.
type MLSBackendOptions struct {
	// Suites lists the cipher suites the backend offers (RPC
	// SupportedCiphersuites); each must be one package mls implements.
	// Empty means the seven suites of RFC 9420, Section 17.1. The
	// post-quantum suites mlskit also implements use provisional
	// private-use code points (see mls.SupportedCipherSuites) that another
	// implementation may use for something else, so they are offered only
	// when listed here.
	Suites []uint16
}

// rfc9420Suites are the cipher suites of RFC 9420, Section 17.1.
var rfc9420Suites = []uint16{
	uint16(mls.X25519_AES128GCM_SHA256_Ed25519),
	uint16(mls.P256_AES128GCM_SHA256_P256),
	uint16(mls.X25519_CHACHA20POLY1305_SHA256_Ed25519),
	uint16(mls.X448_AES256GCM_SHA512_Ed448),
	uint16(mls.P521_AES256GCM_SHA512_P521),
	uint16(mls.X448_CHACHA20POLY1305_SHA512_Ed448),
	uint16(mls.P384_AES256GCM_SHA384_P384),
}

// NewMLSBackend returns the Backend that the mls-interop binary and the
// TestInteropScripts conformance test run: mlskit's own MLS implementation
// (package mls), offering the seven cipher suites of RFC 9420.
func NewMLSBackend() Backend {
	b, err := NewMLSBackendWith(MLSBackendOptions{})
	if err != nil {
		panic(err) // the RFC 9420 suites are always built in
	}
	return b
}

// NewMLSBackendWith returns mlskit's Backend with options; it fails if a
// listed suite is not implemented.
func NewMLSBackendWith(opts MLSBackendOptions) (Backend, error) {
	suites := opts.Suites
	if len(suites) == 0 {
		suites = rfc9420Suites
	}
	var have []uint16
	for _, cs := range mls.SupportedCipherSuites() {
		have = append(have, uint16(cs))
	}
	for _, cs := range suites {
		if !slices.Contains(have, cs) {
			return nil, fmt.Errorf("interop: cipher suite 0x%04x is not implemented by package mls", cs)
		}
	}
	return &mlsBackend{suites: slices.Clone(suites)}, nil
}

// mlsBackend is mlskit's Backend. It holds no state of its own besides its
// suite list: every object it returns is independent.
type mlsBackend struct {
	suites []uint16
}

func (b *mlsBackend) Name() string                    { return "mlskit" }
func (b *mlsBackend) SupportedCiphersuites() []uint16 { return slices.Clone(b.suites) }

// suite checks that the backend offers cs.
func (b *mlsBackend) suite(cs uint16) (mls.CipherSuite, error) {
	if !slices.Contains(b.suites, cs) {
		return 0, fmt.Errorf("%w: cipher suite 0x%04x is not supported", ErrInvalidArgument, cs)
	}
	return mls.CipherSuite(cs), nil
}

// newConfig is the policy of every group and KeyPackage the backend makes:
// handshakes as PrivateMessage when encrypt is set (RFC 9420, Section 6.3),
// every credential accepted, external PSKs from psks. The harness's scripts
// have external senders and new members propose Adds and Removes, and
// expect them committed: every external proposal is authorized (RFC 9420,
// Section 12.1.8 leaves authorization to the application; a real
// application decides per proposal).
func newConfig(encrypt bool, psks *pskStore) *mls.Config {
	cfg := &mls.Config{PublicHandshakes: !encrypt, CredentialValidator: mls.AcceptAllCredentials{},
		ExternalProposals: mls.AllowExternalProposals}
	if psks != nil {
		cfg.PSKs = psks
	}
	return cfg
}

// newIdentity makes a signing key for cs and a Basic credential for
// identity (RFC 9420, Section 5.3).
func newIdentity(cs mls.CipherSuite, identity []byte) (*mls.SignatureKeyPair, mls.Credential, error) {
	sig, err := mls.GenerateSignatureKeyPair(cs, nil)
	if err != nil {
		return nil, mls.Credential{}, mlsErr("generating a signature key", err)
	}
	return sig, mls.BasicCredential(identity), nil
}

// CreateGroup implements Backend.
func (b *mlsBackend) CreateGroup(_ context.Context, req CreateGroupRequest) (State, error) {
	cs, err := b.suite(req.CipherSuite)
	if err != nil {
		return nil, err
	}
	if len(req.GroupID) == 0 {
		return nil, fmt.Errorf("%w: empty group id", ErrInvalidArgument)
	}
	sig, cred, err := newIdentity(cs, req.Identity)
	if err != nil {
		return nil, err
	}
	psks := newPSKStore()
	cfg := newConfig(req.EncryptHandshake, psks)
	g, err := mls.NewGroup(cfg, req.GroupID, cred, sig, nil)
	if err != nil {
		return nil, mlsErr("creating the group", err)
	}
	return newState(g, cfg, psks, req.EncryptHandshake, nil), nil
}

// CreateKeyPackage implements Backend.
func (b *mlsBackend) CreateKeyPackage(_ context.Context, req CreateKeyPackageRequest) (Transaction, KeyPackageResult, error) {
	cs, err := b.suite(req.CipherSuite)
	if err != nil {
		return nil, KeyPackageResult{}, err
	}
	tx, err := newTransaction(cs, req.Identity)
	if err != nil {
		return nil, KeyPackageResult{}, err
	}
	return tx, tx.result(), nil
}

// ExternalJoin implements Backend: an external commit from the GroupInfo
// (RFC 9420, Section 12.4.3.2), removing the joiner's earlier leaf when
// asked (a resync: the member whose Basic identity is the joiner's), and
// injecting the given external PSKs, which the new member keeps.
func (b *mlsBackend) ExternalJoin(_ context.Context, req ExternalJoinRequest) (State, ExternalJoinResult, error) {
	psks := newPSKStore()
	for _, p := range req.PSKs {
		psks.put(p.ID, p.Secret)
	}
	cfg := newConfig(req.EncryptHandshake, psks)
	tree := nilIfEmpty(req.RatchetTree)
	pg, err := mls.NewPublicGroup(cfg, req.GroupInfo, tree)
	if err != nil {
		return nil, ExternalJoinResult{}, mlsErr("reading the group info", err)
	}
	cs, err := b.suite(uint16(pg.CipherSuite()))
	if err != nil {
		return nil, ExternalJoinResult{}, err
	}
	sig, cred, err := newIdentity(cs, req.Identity)
	if err != nil {
		return nil, ExternalJoinResult{}, err
	}
	opts := &mls.ExternalJoinOptions{RatchetTree: tree}
	if req.RemovePrior {
		leaf, err := memberByIdentity(pg.Members(), req.Identity)
		if err != nil {
			return nil, ExternalJoinResult{}, err
		}
		opts.RemoveLeaf = &leaf
	}
	for _, p := range req.PSKs {
		opts.PSKs = append(opts.PSKs, mls.ExternalPSKProposal(p.ID))
	}
	res, err := mls.ExternalJoin(cfg, req.GroupInfo, cred, sig, opts)
	if err != nil {
		return nil, ExternalJoinResult{}, mlsErr("external join", err)
	}
	st := newState(res.Group, cfg, psks, req.EncryptHandshake, nil)
	return st, ExternalJoinResult{Commit: res.Commit, EpochAuthenticator: res.Group.EpochAuthenticator()}, nil
}

// NewMemberAddProposal implements Backend: a fresh KeyPackage in the
// group's cipher suite and its self-signed Add (sender type
// new_member_proposal, RFC 9420, Section 12.1.8).
func (b *mlsBackend) NewMemberAddProposal(_ context.Context, req NewMemberAddProposalRequest) (Transaction, NewMemberAddProposalResult, error) {
	pg, err := mls.NewPublicGroup(newConfig(false, nil), req.GroupInfo, nil)
	if err != nil {
		return nil, NewMemberAddProposalResult{}, mlsErr("reading the group info", err)
	}
	cs, err := b.suite(uint16(pg.CipherSuite()))
	if err != nil {
		return nil, NewMemberAddProposalResult{}, err
	}
	tx, err := newTransaction(cs, req.Identity)
	if err != nil {
		return nil, NewMemberAddProposalResult{}, err
	}
	p, err := mls.NewMemberAddProposal(tx.bundle, pg.GroupID(), pg.Epoch())
	if err != nil {
		return nil, NewMemberAddProposalResult{}, mlsErr("new member Add", err)
	}
	kp := tx.result()
	return tx, NewMemberAddProposalResult{Proposal: p, InitPriv: kp.InitPriv, EncryptionPriv: kp.EncryptionPriv,
		SignaturePriv: kp.SignaturePriv}, nil
}

// CreateExternalSigner implements Backend: a signing key and Basic
// credential, returned as an encoded ExternalSender (RFC 9420, Section
// 12.1.8.1).
func (b *mlsBackend) CreateExternalSigner(_ context.Context, req CreateExternalSignerRequest) (Signer, []byte, error) {
	cs, err := b.suite(req.CipherSuite)
	if err != nil {
		return nil, nil, err
	}
	sig, cred, err := newIdentity(cs, req.Identity)
	if err != nil {
		return nil, nil, err
	}
	// The external_senders extension holds ExternalSender
	// external_senders<V>; the RPC wants its one element.
	ext, err := mls.ExternalSenderExtension(mls.ExternalSenderInfo{SignatureKey: sig.PublicKey(), Credential: cred})
	if err != nil {
		return nil, nil, mlsErr("encoding the external sender", err)
	}
	list, err := wire.Decode[wire.ExternalSenders](ext.Data)
	if err != nil || len(*list) != 1 {
		return nil, nil, fmt.Errorf("interop: encoding the external sender: %v", err)
	}
	es, err := codec.Marshal(&(*list)[0])
	if err != nil {
		return nil, nil, err
	}
	return &mlsSigner{sig: sig}, es, nil
}

// memberByIdentity finds the one member whose Basic credential names
// identity, as the interop protocol identifies members.
func memberByIdentity(members []mls.Member, identity []byte) (mls.LeafIndex, error) {
	var found []mls.LeafIndex
	for _, m := range members {
		if m.Credential.Type == mls.CredentialTypeBasic && bytes.Equal(m.Credential.Identity, identity) {
			found = append(found, m.Index)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("%w: no member has identity %q", ErrInvalidArgument, identity)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("%w: %d members have identity %q", ErrInvalidArgument, len(found), identity)
}

// extensions converts interop extensions to package mls's.
func extensions(in []Extension) []mls.Extension {
	out := make([]mls.Extension, len(in))
	for i, e := range in {
		out[i] = mls.Extension{Type: e.Type, Data: bytes.Clone(e.Data)}
	}
	return out
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// parseKeyPackages decodes KeyPackages sent as MLSMessages.
func parseKeyPackages(in [][]byte) ([]*mls.KeyPackage, error) {
	out := make([]*mls.KeyPackage, len(in))
	for i, b := range in {
		kp, err := mls.ParseKeyPackage(b)
		if err != nil {
			return nil, mlsErr(fmt.Sprintf("key package %d", i), err)
		}
		out[i] = kp
	}
	return out, nil
}

// proposalFor turns a ProposalDescription into a proposal for the group
// groupID, whose members are listed by members (for a remove by identity).
// Pre-shared key nonces are drawn when the proposal is sent.
func proposalFor(d ProposalDescription, groupID []byte, members func() []mls.Member) (*mls.Proposal, error) {
	switch d.Type {
	case ProposalAdd:
		kp, err := mls.ParseKeyPackage(d.KeyPackage)
		if err != nil {
			return nil, mlsErr("add: key package", err)
		}
		return mls.AddProposal(kp), nil
	case ProposalRemove:
		leaf, err := memberByIdentity(members(), d.RemovedID)
		if err != nil {
			return nil, err
		}
		return mls.RemoveProposal(leaf), nil
	case ProposalExternalPSK:
		return mls.ExternalPSKProposal(d.PSKID), nil
	case ProposalResumptionPSK:
		// RFC 9420, Section 8.6: a resumption PSK of usage application
		// from this group.
		return mls.ResumptionPSKProposal(groupID, d.EpochID), nil
	case ProposalGroupContextExtensions:
		return mls.GroupContextExtensionsProposal(extensions(d.Extensions)), nil
	case ProposalReInit:
		return mls.ReInitProposal(d.GroupID, mls.CipherSuite(d.CipherSuite), extensions(d.Extensions)), nil
	}
	return nil, fmt.Errorf("%w: unknown proposal type %q", ErrInvalidArgument, d.Type)
}

// pskStore holds external PSKs (RFC 9420, Section 8.4) for one member; it is
// the mls.PSKStore of the member's groups. It is safe for concurrent use.
type pskStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func newPSKStore() *pskStore { return &pskStore{m: map[string][]byte{}} }

func (p *pskStore) put(id, secret []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[string(id)] = bytes.Clone(secret)
}

// ExternalPSK implements mls.PSKStore.
func (p *pskStore) ExternalPSK(id []byte) ([]byte, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	s, ok := p.m[string(id)]
	return bytes.Clone(s), ok
}

// with returns a new store holding p's PSKs and q's.
func (p *pskStore) with(q *pskStore) *pskStore {
	out := newPSKStore()
	for _, s := range []*pskStore{p, q} {
		s.mu.RLock()
		for k, v := range s.m {
			out.m[k] = bytes.Clone(v)
		}
		s.mu.RUnlock()
	}
	return out
}

// mlsErr classifies an error from package mls for the interop error
// contract: input that does not decode or breaks a rule of RFC 9420 is an
// invalid argument; an operation the group's state does not allow is a
// failed precondition. package mls keeps secrets out of its error text.
func mlsErr(op string, err error) error {
	var ve *mls.ValidationError
	switch {
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrFailedPrecondition), errors.Is(err, ErrNotImplemented):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, mls.ErrPendingCommit), errors.Is(err, mls.ErrNoPendingCommit), errors.Is(err, mls.ErrRemoved),
		errors.Is(err, mls.ErrGroupInactive), errors.Is(err, mls.ErrPendingProposals):
		return fmt.Errorf("%w: %s: %w", ErrFailedPrecondition, op, err)
	case errors.As(err, &ve), errors.Is(err, mls.ErrMalformed), errors.Is(err, mls.ErrOwnMessage),
		slices.ContainsFunc(mlsInputErrors, func(s error) bool { return errors.Is(err, s) }):
		return fmt.Errorf("%w: %s: %w", ErrInvalidArgument, op, err)
	}
	return fmt.Errorf("mlskit: %s: %w", op, err)
}

// mlsInputErrors are package mls's classes of bad input.
var mlsInputErrors = []error{
	mls.ErrWrongGroup, mls.ErrWrongEpoch, mls.ErrInvalidSignature, mls.ErrInvalidMembershipTag,
	mls.ErrInvalidConfirmationTag, mls.ErrUnknownSender, mls.ErrDecrypt, mls.ErrKeyUnavailable,
	mls.ErrInvalidProposal, mls.ErrInvalidCommit, mls.ErrInvalidTree, mls.ErrInvalidKeyPackage,
	mls.ErrInvalidWelcome, mls.ErrNoMatchingKeyPackage, mls.ErrMissingPSK, mls.ErrCredentialRejected,
	mls.ErrUnsupported,
}

// externalSenderIndex finds the signature key in the external_senders
// extension among exts (RFC 9420, Section 12.1.8.1): the sender_index of an
// external sender.
func externalSenderIndex(exts []mls.Extension, key []byte) (uint32, error) {
	for _, e := range exts {
		if e.Type != uint16(wire.ExtensionTypeExternalSenders) {
			continue
		}
		list, err := wire.Decode[wire.ExternalSenders](e.Data)
		if err != nil {
			return 0, fmt.Errorf("%w: the group's external_senders does not decode: %w", ErrInvalidArgument, err)
		}
		for i, s := range *list {
			if bytes.Equal(s.SignatureKey, key) {
				return uint32(i), nil
			}
		}
	}
	return 0, fmt.Errorf("%w: the signer is not among the group's external senders", ErrFailedPrecondition)
}
