package interop

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/mlskit/mlskit/interop/mlsclient"
)

// Server implements the MLSClient gRPC service (mls_client.MLSClient) over a
// Backend. It owns the ids the protocol hands out: state, transaction, reinit
// and signer ids share one space of non-zero uint32 values, so that StorePSK's
// state_or_transaction_id and Free's state_id can name any of them.
//
// Id lifetimes: an id lives until Free; a transaction id is used up by a
// successful JoinGroup or HandleBranch, and a reinit id by a successful
// ReInitWelcome or HandleReInitWelcome. HandleCommit and HandlePendingCommit
// keep the state id (the State moves to the next epoch in place); every
// call that makes a new group returns a new state id.
//
// Calls on one id are serialized; calls on different ids run concurrently.
// A panic in the Backend is recovered and reported as codes.Internal, so one
// bad call does not take down a whole interop run.
type Server struct {
	pb.UnimplementedMLSClientServer

	backend Backend
	logf    func(format string, args ...any)

	mu   sync.Mutex
	next uint32
	objs map[uint32]*object
}

// kind tells which Backend type an id names.
type kind uint8

const (
	kindState kind = iota + 1
	kindTransaction
	kindReInit
	kindSigner
)

func (k kind) String() string {
	switch k {
	case kindState:
		return "state"
	case kindTransaction:
		return "transaction"
	case kindReInit:
		return "reinit"
	case kindSigner:
		return "signer"
	}
	return "unknown"
}

// object is one entry of the id table. mu serializes calls on it; gone is set
// under mu when the id is freed or used up, so that a call that looked the id
// up just before sees that it has ended.
type object struct {
	mu   sync.Mutex
	kind kind
	v    any
	gone bool
}

// ServerOption configures a Server.
type ServerOption func(*Server)

// WithLogf sets where the Server reports recovered Backend panics (by
// default nowhere). Only the RPC name and the kind of panic are logged, never
// request data.
func WithLogf(logf func(format string, args ...any)) ServerOption {
	return func(s *Server) { s.logf = logf }
}

// NewServer returns a Server that drives b.
func NewServer(b Backend, opts ...ServerOption) *Server {
	s := &Server{backend: b, objs: map[uint32]*object{}, logf: func(string, ...any) {}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register registers s on g as the MLSClient service.
func (s *Server) Register(g *grpc.Server) { pb.RegisterMLSClientServer(g, s) }

// Live returns how many ids are in use: states, transactions, reinits and
// signers not yet freed or used up.
func (s *Server) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objs)
}

// add stores v under a fresh id.
func (s *Server) add(k kind, v any) (uint32, error) {
	if v == nil {
		return 0, fmt.Errorf("interop: backend returned no %v", k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range 1 << 20 {
		s.next++
		if s.next == 0 {
			continue // 0 is what proto3 sends for an unset id
		}
		if _, used := s.objs[s.next]; !used {
			s.objs[s.next] = &object{kind: k, v: v}
			return s.next, nil
		}
	}
	return 0, fmt.Errorf("interop: no free id")
}

// lookup returns the live object with the given id and kind.
func (s *Server) lookup(id uint32, k kind) (*object, error) {
	s.mu.Lock()
	o, ok := s.objs[id]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: no %v with id %d", ErrUnknownID, k, id)
	}
	if o.kind != k {
		return nil, fmt.Errorf("%w: id %d names a %v, not a %v", ErrInvalidArgument, id, o.kind, k)
	}
	return o, nil
}

// end marks o (locked by the caller) as gone and forgets its id.
func (s *Server) end(id uint32, o *object) {
	o.gone = true
	s.mu.Lock()
	if s.objs[id] == o {
		delete(s.objs, id)
	}
	s.mu.Unlock()
}

// with runs fn on the live object id of kind k, holding its lock. If fn
// returns use == true, the id is used up afterwards.
func (s *Server) with(id uint32, k kind, fn func(v any) (use bool, err error)) error {
	o, err := s.lookup(id, k)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gone {
		return fmt.Errorf("%w: %v %d was freed or used up", ErrUnknownID, k, id)
	}
	use, err := fn(o.v)
	if err == nil && use {
		s.end(id, o)
	}
	return err
}

func (s *Server) withState(id uint32, fn func(State) error) error {
	return s.with(id, kindState, func(v any) (bool, error) { return false, fn(v.(State)) })
}

// recoverPanic turns a Backend panic into codes.Internal.
func (s *Server) recoverPanic(rpc string, errp *error) {
	r := recover()
	if r == nil {
		return
	}
	// A runtime error's text (index out of range, nil dereference) carries
	// no request data; any other panic value might, so only its type is logged.
	what := fmt.Sprintf("%T", r)
	if re, ok := r.(runtime.Error); ok {
		what = re.Error()
	}
	s.logf("mls-interop: backend panicked in %s: %s", rpc, what)
	*errp = status.Errorf(codes.Internal, "mlskit: backend panicked in %s", rpc)
}

// uint16Arg checks that a wire value is a 16-bit protocol value.
func uint16Arg(field string, v uint32) (uint16, error) {
	if v > 0xFFFF {
		return 0, fmt.Errorf("%w: %s %d does not fit in 16 bits", ErrInvalidArgument, field, v)
	}
	return uint16(v), nil
}

func extensionsArg(in []*pb.Extension) ([]Extension, error) {
	out := make([]Extension, 0, len(in))
	for _, e := range in {
		t, err := uint16Arg("extension_type", e.GetExtensionType())
		if err != nil {
			return nil, err
		}
		out = append(out, Extension{Type: t, Data: e.GetExtensionData()})
	}
	return out, nil
}

// proposalArg converts a ProposalDescription; reinit is allowed only where
// the protocol allows it (ExternalSignerProposal).
func proposalArg(d *pb.ProposalDescription, allowReInit bool) (ProposalDescription, error) {
	if d == nil {
		return ProposalDescription{}, fmt.Errorf("%w: missing proposal description", ErrInvalidArgument)
	}
	t := ProposalType(d.GetProposalType())
	switch t {
	case ProposalAdd, ProposalRemove, ProposalExternalPSK, ProposalResumptionPSK, ProposalGroupContextExtensions:
	case ProposalReInit:
		if !allowReInit {
			return ProposalDescription{}, fmt.Errorf("%w: a reinit proposal cannot be committed by value", ErrInvalidArgument)
		}
	default:
		return ProposalDescription{}, fmt.Errorf("%w: unknown proposal type %q", ErrInvalidArgument, d.GetProposalType())
	}
	exts, err := extensionsArg(d.GetExtensions())
	if err != nil {
		return ProposalDescription{}, err
	}
	suite, err := uint16Arg("cipher_suite", d.GetCipherSuite())
	if err != nil {
		return ProposalDescription{}, err
	}
	return ProposalDescription{
		Type:        t,
		KeyPackage:  d.GetKeyPackage(),
		RemovedID:   d.GetRemovedId(),
		PSKID:       d.GetPskId(),
		EpochID:     d.GetEpochId(),
		Extensions:  exts,
		GroupID:     d.GetGroupId(),
		CipherSuite: suite,
	}, nil
}

func commitArg(r *pb.CommitRequest) (CommitRequest, error) {
	byValue := make([]ProposalDescription, 0, len(r.GetByValue()))
	for _, d := range r.GetByValue() {
		p, err := proposalArg(d, false)
		if err != nil {
			return CommitRequest{}, err
		}
		byValue = append(byValue, p)
	}
	return CommitRequest{
		ByReference:  r.GetByReference(),
		ByValue:      byValue,
		ForcePath:    r.GetForcePath(),
		ExternalTree: r.GetExternalTree(),
	}, nil
}

// Name implements RPC Name.
func (s *Server) Name(ctx context.Context, _ *pb.NameRequest) (resp *pb.NameResponse, err error) {
	defer s.recoverPanic("Name", &err)
	return &pb.NameResponse{Name: s.backend.Name()}, nil
}

// SupportedCiphersuites implements RPC SupportedCiphersuites.
func (s *Server) SupportedCiphersuites(ctx context.Context, _ *pb.SupportedCiphersuitesRequest) (resp *pb.SupportedCiphersuitesResponse, err error) {
	defer s.recoverPanic("SupportedCiphersuites", &err)
	suites := s.backend.SupportedCiphersuites()
	out := make([]uint32, len(suites))
	for i, cs := range suites {
		out[i] = uint32(cs)
	}
	return &pb.SupportedCiphersuitesResponse{Ciphersuites: out}, nil
}

// CreateGroup implements RPC CreateGroup.
func (s *Server) CreateGroup(ctx context.Context, r *pb.CreateGroupRequest) (resp *pb.CreateGroupResponse, err error) {
	defer s.recoverPanic("CreateGroup", &err)
	suite, err := uint16Arg("cipher_suite", r.GetCipherSuite())
	if err != nil {
		return nil, toStatus(err)
	}
	st, err := s.backend.CreateGroup(ctx, CreateGroupRequest{
		GroupID: r.GetGroupId(), CipherSuite: suite, EncryptHandshake: r.GetEncryptHandshake(), Identity: r.GetIdentity(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	id, err := s.add(kindState, st)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CreateGroupResponse{StateId: id}, nil
}

// CreateKeyPackage implements RPC CreateKeyPackage.
func (s *Server) CreateKeyPackage(ctx context.Context, r *pb.CreateKeyPackageRequest) (resp *pb.CreateKeyPackageResponse, err error) {
	defer s.recoverPanic("CreateKeyPackage", &err)
	suite, err := uint16Arg("cipher_suite", r.GetCipherSuite())
	if err != nil {
		return nil, toStatus(err)
	}
	tx, kp, err := s.backend.CreateKeyPackage(ctx, CreateKeyPackageRequest{CipherSuite: suite, Identity: r.GetIdentity()})
	if err != nil {
		return nil, toStatus(err)
	}
	id, err := s.add(kindTransaction, tx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CreateKeyPackageResponse{
		TransactionId:  id,
		KeyPackage:     kp.KeyPackage,
		InitPriv:       kp.InitPriv,
		EncryptionPriv: kp.EncryptionPriv,
		SignaturePriv:  kp.SignaturePriv,
	}, nil
}

// JoinGroup implements RPC JoinGroup; it uses up the transaction.
func (s *Server) JoinGroup(ctx context.Context, r *pb.JoinGroupRequest) (resp *pb.JoinGroupResponse, err error) {
	defer s.recoverPanic("JoinGroup", &err)
	var st State
	var auth []byte
	err = s.with(r.GetTransactionId(), kindTransaction, func(v any) (bool, error) {
		var err error
		st, auth, err = v.(Transaction).JoinGroup(ctx, JoinGroupRequest{
			Welcome: r.GetWelcome(), EncryptHandshake: r.GetEncryptHandshake(),
			Identity: r.GetIdentity(), RatchetTree: r.GetRatchetTree(),
		})
		return true, err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	id, err := s.add(kindState, st)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.JoinGroupResponse{StateId: id, EpochAuthenticator: auth}, nil
}

// ExternalJoin implements RPC ExternalJoin.
func (s *Server) ExternalJoin(ctx context.Context, r *pb.ExternalJoinRequest) (resp *pb.ExternalJoinResponse, err error) {
	defer s.recoverPanic("ExternalJoin", &err)
	psks := make([]PSK, len(r.GetPsks()))
	for i, p := range r.GetPsks() {
		psks[i] = PSK{ID: p.GetPskId(), Secret: p.GetPskSecret()}
	}
	st, res, err := s.backend.ExternalJoin(ctx, ExternalJoinRequest{
		GroupInfo: r.GetGroupInfo(), RatchetTree: r.GetRatchetTree(), EncryptHandshake: r.GetEncryptHandshake(),
		Identity: r.GetIdentity(), RemovePrior: r.GetRemovePrior(), PSKs: psks,
	})
	if err != nil {
		return nil, toStatus(err)
	}
	id, err := s.add(kindState, st)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ExternalJoinResponse{StateId: id, Commit: res.Commit, EpochAuthenticator: res.EpochAuthenticator}, nil
}

// GroupInfo implements RPC GroupInfo.
func (s *Server) GroupInfo(ctx context.Context, r *pb.GroupInfoRequest) (resp *pb.GroupInfoResponse, err error) {
	defer s.recoverPanic("GroupInfo", &err)
	err = s.withState(r.GetStateId(), func(st State) error {
		res, err := st.GroupInfo(ctx, r.GetExternalTree())
		resp = &pb.GroupInfoResponse{GroupInfo: res.GroupInfo, RatchetTree: res.RatchetTree}
		return err
	})
	return resp, toStatus(err)
}

// StateAuth implements RPC StateAuth.
func (s *Server) StateAuth(ctx context.Context, r *pb.StateAuthRequest) (resp *pb.StateAuthResponse, err error) {
	defer s.recoverPanic("StateAuth", &err)
	err = s.withState(r.GetStateId(), func(st State) error {
		auth, err := st.StateAuth(ctx)
		resp = &pb.StateAuthResponse{StateAuthSecret: auth}
		return err
	})
	return resp, toStatus(err)
}

// Export implements RPC Export.
func (s *Server) Export(ctx context.Context, r *pb.ExportRequest) (resp *pb.ExportResponse, err error) {
	defer s.recoverPanic("Export", &err)
	// RFC 9420, Section 8: KDFLabel.length, and so an exported secret's
	// length, is a uint16.
	n, err := uint16Arg("key_length", r.GetKeyLength())
	if err != nil {
		return nil, toStatus(err)
	}
	err = s.withState(r.GetStateId(), func(st State) error {
		out, err := st.Export(ctx, r.GetLabel(), r.GetContext(), int(n))
		resp = &pb.ExportResponse{ExportedSecret: out}
		return err
	})
	return resp, toStatus(err)
}

// Protect implements RPC Protect.
func (s *Server) Protect(ctx context.Context, r *pb.ProtectRequest) (resp *pb.ProtectResponse, err error) {
	defer s.recoverPanic("Protect", &err)
	err = s.withState(r.GetStateId(), func(st State) error {
		ct, err := st.Protect(ctx, r.GetAuthenticatedData(), r.GetPlaintext())
		resp = &pb.ProtectResponse{Ciphertext: ct}
		return err
	})
	return resp, toStatus(err)
}

// Unprotect implements RPC Unprotect.
func (s *Server) Unprotect(ctx context.Context, r *pb.UnprotectRequest) (resp *pb.UnprotectResponse, err error) {
	defer s.recoverPanic("Unprotect", &err)
	err = s.withState(r.GetStateId(), func(st State) error {
		aad, pt, err := st.Unprotect(ctx, r.GetCiphertext())
		resp = &pb.UnprotectResponse{AuthenticatedData: aad, Plaintext: pt}
		return err
	})
	return resp, toStatus(err)
}

// StorePSK implements RPC StorePSK, on a state or a transaction.
func (s *Server) StorePSK(ctx context.Context, r *pb.StorePSKRequest) (resp *pb.StorePSKResponse, err error) {
	defer s.recoverPanic("StorePSK", &err)
	id := r.GetStateOrTransactionId()
	s.mu.Lock()
	o, ok := s.objs[id]
	s.mu.Unlock()
	k := kindState
	if ok && o.kind == kindTransaction {
		k = kindTransaction
	}
	err = s.with(id, k, func(v any) (bool, error) {
		if k == kindTransaction {
			return false, v.(Transaction).StorePSK(ctx, r.GetPskId(), r.GetPskSecret())
		}
		return false, v.(State).StorePSK(ctx, r.GetPskId(), r.GetPskSecret())
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.StorePSKResponse{}, nil
}

// proposal runs one of the proposal RPCs.
func (s *Server) proposal(id uint32, fn func(State) ([]byte, error)) (*pb.ProposalResponse, error) {
	var resp *pb.ProposalResponse
	err := s.withState(id, func(st State) error {
		p, err := fn(st)
		resp = &pb.ProposalResponse{Proposal: p}
		return err
	})
	return resp, toStatus(err)
}

// AddProposal implements RPC AddProposal.
func (s *Server) AddProposal(ctx context.Context, r *pb.AddProposalRequest) (resp *pb.ProposalResponse, err error) {
	defer s.recoverPanic("AddProposal", &err)
	return s.proposal(r.GetStateId(), func(st State) ([]byte, error) { return st.AddProposal(ctx, r.GetKeyPackage()) })
}

// UpdateProposal implements RPC UpdateProposal.
func (s *Server) UpdateProposal(ctx context.Context, r *pb.UpdateProposalRequest) (resp *pb.ProposalResponse, err error) {
	defer s.recoverPanic("UpdateProposal", &err)
	return s.proposal(r.GetStateId(), func(st State) ([]byte, error) { return st.UpdateProposal(ctx) })
}

// RemoveProposal implements RPC RemoveProposal.
func (s *Server) RemoveProposal(ctx context.Context, r *pb.RemoveProposalRequest) (resp *pb.ProposalResponse, err error) {
	defer s.recoverPanic("RemoveProposal", &err)
	return s.proposal(r.GetStateId(), func(st State) ([]byte, error) { return st.RemoveProposal(ctx, r.GetRemovedId()) })
}

// ExternalPSKProposal implements RPC ExternalPSKProposal.
func (s *Server) ExternalPSKProposal(ctx context.Context, r *pb.ExternalPSKProposalRequest) (resp *pb.ProposalResponse, err error) {
	defer s.recoverPanic("ExternalPSKProposal", &err)
	return s.proposal(r.GetStateId(), func(st State) ([]byte, error) { return st.ExternalPSKProposal(ctx, r.GetPskId()) })
}

// ResumptionPSKProposal implements RPC ResumptionPSKProposal.
func (s *Server) ResumptionPSKProposal(ctx context.Context, r *pb.ResumptionPSKProposalRequest) (resp *pb.ProposalResponse, err error) {
	defer s.recoverPanic("ResumptionPSKProposal", &err)
	return s.proposal(r.GetStateId(), func(st State) ([]byte, error) { return st.ResumptionPSKProposal(ctx, r.GetEpochId()) })
}

// GroupContextExtensionsProposal implements RPC GroupContextExtensionsProposal.
func (s *Server) GroupContextExtensionsProposal(ctx context.Context, r *pb.GroupContextExtensionsProposalRequest) (resp *pb.ProposalResponse, err error) {
	defer s.recoverPanic("GroupContextExtensionsProposal", &err)
	exts, err := extensionsArg(r.GetExtensions())
	if err != nil {
		return nil, toStatus(err)
	}
	return s.proposal(r.GetStateId(), func(st State) ([]byte, error) { return st.GroupContextExtensionsProposal(ctx, exts) })
}

// ReInitProposal implements RPC ReInitProposal.
func (s *Server) ReInitProposal(ctx context.Context, r *pb.ReInitProposalRequest) (resp *pb.ProposalResponse, err error) {
	defer s.recoverPanic("ReInitProposal", &err)
	suite, err := uint16Arg("cipher_suite", r.GetCipherSuite())
	if err != nil {
		return nil, toStatus(err)
	}
	exts, err := extensionsArg(r.GetExtensions())
	if err != nil {
		return nil, toStatus(err)
	}
	req := ReInitProposalRequest{CipherSuite: suite, GroupID: r.GetGroupId(), Extensions: exts}
	return s.proposal(r.GetStateId(), func(st State) ([]byte, error) { return st.ReInitProposal(ctx, req) })
}

// AddExternalSigner implements RPC AddExternalSigner.
func (s *Server) AddExternalSigner(ctx context.Context, r *pb.AddExternalSignerRequest) (resp *pb.ProposalResponse, err error) {
	defer s.recoverPanic("AddExternalSigner", &err)
	return s.proposal(r.GetStateId(), func(st State) ([]byte, error) { return st.AddExternalSigner(ctx, r.GetExternalSender()) })
}

// commit runs Commit or ReInitCommit.
func (s *Server) commit(ctx context.Context, r *pb.CommitRequest, fn func(State, CommitRequest) (CommitResult, error)) (*pb.CommitResponse, error) {
	req, err := commitArg(r)
	if err != nil {
		return nil, toStatus(err)
	}
	var resp *pb.CommitResponse
	err = s.withState(r.GetStateId(), func(st State) error {
		res, err := fn(st, req)
		resp = &pb.CommitResponse{Commit: res.Commit, Welcome: res.Welcome, RatchetTree: res.RatchetTree}
		return err
	})
	return resp, toStatus(err)
}

// Commit implements RPC Commit.
func (s *Server) Commit(ctx context.Context, r *pb.CommitRequest) (resp *pb.CommitResponse, err error) {
	defer s.recoverPanic("Commit", &err)
	return s.commit(ctx, r, func(st State, req CommitRequest) (CommitResult, error) { return st.Commit(ctx, req) })
}

// HandleCommit implements RPC HandleCommit; the state keeps its id.
func (s *Server) HandleCommit(ctx context.Context, r *pb.HandleCommitRequest) (resp *pb.HandleCommitResponse, err error) {
	defer s.recoverPanic("HandleCommit", &err)
	err = s.withState(r.GetStateId(), func(st State) error {
		auth, err := st.HandleCommit(ctx, r.GetProposal(), r.GetCommit())
		resp = &pb.HandleCommitResponse{StateId: r.GetStateId(), EpochAuthenticator: auth}
		return err
	})
	return resp, toStatus(err)
}

// HandlePendingCommit implements RPC HandlePendingCommit; the state keeps its id.
func (s *Server) HandlePendingCommit(ctx context.Context, r *pb.HandlePendingCommitRequest) (resp *pb.HandleCommitResponse, err error) {
	defer s.recoverPanic("HandlePendingCommit", &err)
	err = s.withState(r.GetStateId(), func(st State) error {
		auth, err := st.HandlePendingCommit(ctx)
		resp = &pb.HandleCommitResponse{StateId: r.GetStateId(), EpochAuthenticator: auth}
		return err
	})
	return resp, toStatus(err)
}

// ReInitCommit implements RPC ReInitCommit.
func (s *Server) ReInitCommit(ctx context.Context, r *pb.CommitRequest) (resp *pb.CommitResponse, err error) {
	defer s.recoverPanic("ReInitCommit", &err)
	return s.commit(ctx, r, func(st State, req CommitRequest) (CommitResult, error) { return st.ReInitCommit(ctx, req) })
}

// reinit runs HandlePendingReInitCommit or HandleReInitCommit.
func (s *Server) reinit(id uint32, fn func(State) (ReInit, ReInitResult, error)) (*pb.HandleReInitCommitResponse, error) {
	var ri ReInit
	var res ReInitResult
	err := s.withState(id, func(st State) error {
		var err error
		ri, res, err = fn(st)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	rid, err := s.add(kindReInit, ri)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.HandleReInitCommitResponse{ReinitId: rid, KeyPackage: res.KeyPackage, EpochAuthenticator: res.EpochAuthenticator}, nil
}

// HandlePendingReInitCommit implements RPC HandlePendingReInitCommit.
func (s *Server) HandlePendingReInitCommit(ctx context.Context, r *pb.HandlePendingCommitRequest) (resp *pb.HandleReInitCommitResponse, err error) {
	defer s.recoverPanic("HandlePendingReInitCommit", &err)
	return s.reinit(r.GetStateId(), func(st State) (ReInit, ReInitResult, error) { return st.HandlePendingReInitCommit(ctx) })
}

// HandleReInitCommit implements RPC HandleReInitCommit.
func (s *Server) HandleReInitCommit(ctx context.Context, r *pb.HandleCommitRequest) (resp *pb.HandleReInitCommitResponse, err error) {
	defer s.recoverPanic("HandleReInitCommit", &err)
	return s.reinit(r.GetStateId(), func(st State) (ReInit, ReInitResult, error) {
		return st.HandleReInitCommit(ctx, r.GetProposal(), r.GetCommit())
	})
}

// ReInitWelcome implements RPC ReInitWelcome; it uses up the reinit id.
func (s *Server) ReInitWelcome(ctx context.Context, r *pb.ReInitWelcomeRequest) (resp *pb.CreateSubgroupResponse, err error) {
	defer s.recoverPanic("ReInitWelcome", &err)
	var st State
	var res SubgroupResult
	err = s.with(r.GetReinitId(), kindReInit, func(v any) (bool, error) {
		var err error
		st, res, err = v.(ReInit).ReInitWelcome(ctx, ReInitWelcomeRequest{
			KeyPackages: r.GetKeyPackage(), ForcePath: r.GetForcePath(), ExternalTree: r.GetExternalTree(),
		})
		return true, err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return s.subgroup(st, res)
}

func (s *Server) subgroup(st State, res SubgroupResult) (*pb.CreateSubgroupResponse, error) {
	id, err := s.add(kindState, st)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CreateSubgroupResponse{
		StateId: id, Welcome: res.Welcome, RatchetTree: res.RatchetTree, EpochAuthenticator: res.EpochAuthenticator,
	}, nil
}

// HandleReInitWelcome implements RPC HandleReInitWelcome; it uses up the
// reinit id.
func (s *Server) HandleReInitWelcome(ctx context.Context, r *pb.HandleReInitWelcomeRequest) (resp *pb.JoinGroupResponse, err error) {
	defer s.recoverPanic("HandleReInitWelcome", &err)
	var st State
	var auth []byte
	err = s.with(r.GetReinitId(), kindReInit, func(v any) (bool, error) {
		var err error
		st, auth, err = v.(ReInit).HandleReInitWelcome(ctx, r.GetWelcome(), r.GetRatchetTree())
		return true, err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	id, err := s.add(kindState, st)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.JoinGroupResponse{StateId: id, EpochAuthenticator: auth}, nil
}

// CreateBranch implements RPC CreateBranch.
func (s *Server) CreateBranch(ctx context.Context, r *pb.CreateBranchRequest) (resp *pb.CreateSubgroupResponse, err error) {
	defer s.recoverPanic("CreateBranch", &err)
	exts, err := extensionsArg(r.GetExtensions())
	if err != nil {
		return nil, toStatus(err)
	}
	var st State
	var res SubgroupResult
	err = s.withState(r.GetStateId(), func(old State) error {
		var err error
		st, res, err = old.CreateBranch(ctx, CreateBranchRequest{
			GroupID: r.GetGroupId(), Extensions: exts, KeyPackages: r.GetKeyPackages(),
			ForcePath: r.GetForcePath(), ExternalTree: r.GetExternalTree(),
		})
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return s.subgroup(st, res)
}

// HandleBranch implements RPC HandleBranch; it uses up the transaction and
// leaves the old state as it was.
func (s *Server) HandleBranch(ctx context.Context, r *pb.HandleBranchRequest) (resp *pb.HandleBranchResponse, err error) {
	defer s.recoverPanic("HandleBranch", &err)
	var st State
	var auth []byte
	// Lock the two objects one inside the other; the transaction is the
	// inner one always, and a transaction is never locked first by any other
	// RPC that then locks a state, so this cannot deadlock.
	err = s.withState(r.GetStateId(), func(old State) error {
		return s.with(r.GetTransactionId(), kindTransaction, func(v any) (bool, error) {
			var err error
			st, auth, err = old.HandleBranch(ctx, v.(Transaction), r.GetWelcome(), r.GetRatchetTree())
			return true, err
		})
	})
	if err != nil {
		return nil, toStatus(err)
	}
	id, err := s.add(kindState, st)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.HandleBranchResponse{StateId: id, EpochAuthenticator: auth}, nil
}

// NewMemberAddProposal implements RPC NewMemberAddProposal.
func (s *Server) NewMemberAddProposal(ctx context.Context, r *pb.NewMemberAddProposalRequest) (resp *pb.NewMemberAddProposalResponse, err error) {
	defer s.recoverPanic("NewMemberAddProposal", &err)
	tx, res, err := s.backend.NewMemberAddProposal(ctx, NewMemberAddProposalRequest{GroupInfo: r.GetGroupInfo(), Identity: r.GetIdentity()})
	if err != nil {
		return nil, toStatus(err)
	}
	id, err := s.add(kindTransaction, tx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.NewMemberAddProposalResponse{
		TransactionId: id, Proposal: res.Proposal,
		InitPriv: res.InitPriv, EncryptionPriv: res.EncryptionPriv, SignaturePriv: res.SignaturePriv,
	}, nil
}

// CreateExternalSigner implements RPC CreateExternalSigner.
func (s *Server) CreateExternalSigner(ctx context.Context, r *pb.CreateExternalSignerRequest) (resp *pb.CreateExternalSignerResponse, err error) {
	defer s.recoverPanic("CreateExternalSigner", &err)
	suite, err := uint16Arg("cipher_suite", r.GetCipherSuite())
	if err != nil {
		return nil, toStatus(err)
	}
	sg, sender, err := s.backend.CreateExternalSigner(ctx, CreateExternalSignerRequest{CipherSuite: suite, Identity: r.GetIdentity()})
	if err != nil {
		return nil, toStatus(err)
	}
	id, err := s.add(kindSigner, sg)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CreateExternalSignerResponse{SignerId: id, ExternalSender: sender}, nil
}

// ExternalSignerProposal implements RPC ExternalSignerProposal.
func (s *Server) ExternalSignerProposal(ctx context.Context, r *pb.ExternalSignerProposalRequest) (resp *pb.ProposalResponse, err error) {
	defer s.recoverPanic("ExternalSignerProposal", &err)
	desc, err := proposalArg(r.GetDescription(), true)
	if err != nil {
		return nil, toStatus(err)
	}
	err = s.with(r.GetSignerId(), kindSigner, func(v any) (bool, error) {
		p, err := v.(Signer).ExternalSignerProposal(ctx, ExternalSignerProposalRequest{
			SignerIndex: r.GetSignerIndex(), GroupInfo: r.GetGroupInfo(), RatchetTree: r.GetRatchetTree(), Description: desc,
		})
		resp = &pb.ProposalResponse{Proposal: p}
		return false, err
	})
	return resp, toStatus(err)
}

// Free implements RPC Free: it forgets any id (state, transaction, reinit
// or signer). If the object implements io.Closer, Close is called.
func (s *Server) Free(ctx context.Context, r *pb.FreeRequest) (resp *pb.FreeResponse, err error) {
	defer s.recoverPanic("Free", &err)
	id := r.GetStateId()
	s.mu.Lock()
	o, ok := s.objs[id]
	s.mu.Unlock()
	if !ok {
		return nil, toStatus(fmt.Errorf("%w: nothing has id %d", ErrUnknownID, id))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gone {
		return nil, toStatus(fmt.Errorf("%w: id %d was freed or used up", ErrUnknownID, id))
	}
	s.end(id, o)
	if c, ok := o.v.(io.Closer); ok {
		if err := c.Close(); err != nil {
			return nil, toStatus(err)
		}
	}
	return &pb.FreeResponse{}, nil
}
