package interop

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
)

// mlsState is one member's view of one group (a state_id): an mls.Group and
// what the interop protocol needs around it.
//
// Failed calls leave it as it was: package mls stages commits before
// merging them, and the proposals a Commit or HandleCommit processes first
// are taken back (mls.Group.DiscardProposal) if anything after fails. One
// thing cannot be taken back: a handshake sent as PrivateMessage uses up its
// sender's key for that generation once decrypted (RFC 9420, Section 9.2
// deletes keys after use, for forward secrecy), so processing the same
// message again fails.
type mlsState struct {
	// mu guards g. States made from this one by CreateBranch or
	// ReInitWelcome share it, and so does a ReInit made from it: their
	// groups read this group's resumption secrets (RFC 9420, Section 8.6),
	// and the Server serializes calls per id, not per group.
	mu      *sync.Mutex
	g       *mls.Group
	cfg     *mls.Config
	psks    *pskStore
	encrypt bool

	// own holds the proposals this member sent in epoch ownEpoch, as sent.
	// The runner may pass them back by reference (a reinit whose proposer
	// is also its committer); they are already cached, and this member
	// cannot decrypt or process its own messages.
	own      [][]byte
	ownEpoch uint64

	// pending is the own commit awaiting HandlePendingCommit.
	pending *mls.StagedCommit
}

func newState(g *mls.Group, cfg *mls.Config, psks *pskStore, encrypt bool, mu *sync.Mutex) *mlsState {
	if mu == nil {
		mu = new(sync.Mutex)
	}
	return &mlsState{mu: mu, g: g, cfg: cfg, psks: psks, encrypt: encrypt, ownEpoch: g.Epoch()}
}

// lock locks the group and forgets own proposals of past epochs.
func (s *mlsState) lock() {
	s.mu.Lock()
	if e := s.g.Epoch(); e != s.ownEpoch {
		s.own, s.ownEpoch = nil, e
	}
	if !s.g.HasPendingCommit() {
		s.pending = nil
	}
}

func (s *mlsState) unlock() { s.mu.Unlock() }

// GroupInfo implements State: a GroupInfo with external_pub, so that it
// serves external joins (RFC 9420, Section 12.4.3.2).
func (s *mlsState) GroupInfo(_ context.Context, externalTree bool) (GroupInfoResult, error) {
	s.lock()
	defer s.unlock()
	gi, err := s.g.GroupInfo(!externalTree, true)
	if err != nil {
		return GroupInfoResult{}, mlsErr("group info", err)
	}
	res := GroupInfoResult{GroupInfo: gi}
	if externalTree {
		if res.RatchetTree, err = s.g.RatchetTree(); err != nil {
			return GroupInfoResult{}, mlsErr("ratchet tree", err)
		}
	}
	return res, nil
}

// StateAuth implements State.
func (s *mlsState) StateAuth(context.Context) ([]byte, error) {
	s.lock()
	defer s.unlock()
	return s.g.EpochAuthenticator(), nil
}

// Export implements State.
func (s *mlsState) Export(_ context.Context, label string, context []byte, length int) ([]byte, error) {
	s.lock()
	defer s.unlock()
	out, err := s.g.Export(label, context, length)
	if err != nil {
		return nil, mlsErr("export", err)
	}
	return out, nil
}

// Protect implements State.
func (s *mlsState) Protect(_ context.Context, authenticatedData, plaintext []byte) ([]byte, error) {
	s.lock()
	defer s.unlock()
	ct, err := s.g.Encrypt(plaintext, authenticatedData)
	if err != nil {
		return nil, mlsErr("protect", err)
	}
	return ct, nil
}

// Unprotect implements State. A handshake message is refused (a proposal
// it held is taken back out of the cache).
func (s *mlsState) Unprotect(_ context.Context, ciphertext []byte) ([]byte, []byte, error) {
	s.lock()
	defer s.unlock()
	r, err := s.g.Process(ciphertext)
	if err != nil {
		return nil, nil, mlsErr("unprotect", err)
	}
	if r.Proposal != nil || r.Commit != nil {
		if r.Proposal != nil {
			s.g.DiscardProposal(r.Proposal.Ref)
		}
		return nil, nil, fmt.Errorf("%w: unprotect: the message is a handshake, not application data", ErrInvalidArgument)
	}
	return r.AuthenticatedData, r.Application, nil
}

// StorePSK implements State.
func (s *mlsState) StorePSK(_ context.Context, id, secret []byte) error {
	s.psks.put(id, secret)
	return nil
}

// propose sends one own proposal and remembers it.
func (s *mlsState) propose(op string, f func() ([]byte, error)) ([]byte, error) {
	s.lock()
	defer s.unlock()
	msg, err := f()
	if err != nil {
		return nil, mlsErr(op, err)
	}
	s.own = append(s.own, msg)
	return msg, nil
}

// AddProposal implements State.
func (s *mlsState) AddProposal(_ context.Context, keyPackage []byte) ([]byte, error) {
	kp, err := mls.ParseKeyPackage(keyPackage)
	if err != nil {
		return nil, mlsErr("add proposal: key package", err)
	}
	return s.propose("add proposal", func() ([]byte, error) { return s.g.ProposeAdd(kp) })
}

// UpdateProposal implements State: a fresh leaf encryption key, same
// credential and signature key.
func (s *mlsState) UpdateProposal(context.Context) ([]byte, error) {
	return s.propose("update proposal", func() ([]byte, error) { return s.g.ProposeUpdate(nil, nil) })
}

// RemoveProposal implements State.
func (s *mlsState) RemoveProposal(_ context.Context, removedIdentity []byte) ([]byte, error) {
	return s.propose("remove proposal", func() ([]byte, error) {
		leaf, err := memberByIdentity(s.g.Members(), removedIdentity)
		if err != nil {
			return nil, err
		}
		return s.g.ProposeRemove(leaf)
	})
}

// ExternalPSKProposal implements State.
func (s *mlsState) ExternalPSKProposal(_ context.Context, pskID []byte) ([]byte, error) {
	return s.propose("external PSK proposal", func() ([]byte, error) { return s.g.ProposeExternalPSK(pskID) })
}

// ResumptionPSKProposal implements State.
func (s *mlsState) ResumptionPSKProposal(_ context.Context, epoch uint64) ([]byte, error) {
	return s.propose("resumption PSK proposal", func() ([]byte, error) { return s.g.ProposeResumptionPSK(epoch) })
}

// GroupContextExtensionsProposal implements State.
func (s *mlsState) GroupContextExtensionsProposal(_ context.Context, exts []Extension) ([]byte, error) {
	return s.propose("group context extensions proposal", func() ([]byte, error) {
		return s.g.ProposeGroupContextExtensions(extensions(exts))
	})
}

// ReInitProposal implements State.
func (s *mlsState) ReInitProposal(_ context.Context, req ReInitProposalRequest) ([]byte, error) {
	return s.propose("reinit proposal", func() ([]byte, error) {
		return s.g.ProposeReInit(req.GroupID, mls.CipherSuite(req.CipherSuite), extensions(req.Extensions))
	})
}

// AddExternalSigner implements State: a GroupContextExtensions proposal
// (RFC 9420, Section 12.1.7) that keeps every current extension and appends
// externalSender to external_senders (Section 12.1.8.1), creating the
// extension if there is none.
func (s *mlsState) AddExternalSigner(_ context.Context, externalSender []byte) ([]byte, error) {
	es, err := wire.Decode[wire.ExternalSender](externalSender)
	if err != nil {
		return nil, fmt.Errorf("%w: external sender: %w", ErrInvalidArgument, err)
	}
	return s.propose("add external signer", func() ([]byte, error) {
		exts := s.g.Extensions()
		at := len(exts)
		var senders wire.ExternalSenders
		for i, e := range exts {
			if e.Type == uint16(wire.ExtensionTypeExternalSenders) {
				cur, err := wire.Decode[wire.ExternalSenders](e.Data)
				if err != nil {
					return nil, fmt.Errorf("%w: the group's external_senders does not decode: %w", ErrFailedPrecondition, err)
				}
				at, senders = i, *cur
				break
			}
		}
		senders = append(senders, *es)
		data, err := codec.Marshal(&senders)
		if err != nil {
			return nil, err
		}
		ext := mls.Extension{Type: uint16(wire.ExtensionTypeExternalSenders), Data: data}
		if at == len(exts) {
			exts = append(exts, ext)
		} else {
			exts[at] = ext
		}
		return s.g.ProposeGroupContextExtensions(exts)
	})
}

// isOwn reports whether msg is a proposal this member sent in this epoch.
func (s *mlsState) isOwn(msg []byte) bool {
	for _, m := range s.own {
		if bytes.Equal(m, msg) {
			return true
		}
	}
	return false
}

// processProposals processes the by-reference proposals of a Commit or
// HandleCommit (each an MLSMessage) so that they are cached for the commit,
// skipping this member's own. It returns an undo function that takes back
// what it cached; on error it has already undone its work.
func (s *mlsState) processProposals(msgs [][]byte) (undo func(), err error) {
	var refs [][]byte
	undo = func() {
		for _, r := range refs {
			s.g.DiscardProposal(r)
		}
	}
	for i, m := range msgs {
		if s.isOwn(m) {
			continue
		}
		r, err := s.g.Process(m)
		if err != nil {
			undo()
			return nil, mlsErr(fmt.Sprintf("proposal %d", i), err)
		}
		if r.Proposal == nil {
			undo()
			return nil, fmt.Errorf("%w: proposal %d is not a proposal", ErrInvalidArgument, i)
		}
		refs = append(refs, r.Proposal.Ref)
	}
	return undo, nil
}

// commit runs Commit and ReInitCommit: process the by-reference proposals,
// then commit every proposal cached in this epoch (this member's own, which
// the protocol commits without being told, and those just processed) by
// reference, and req.ByValue by value (RFC 9420, Section 12.4). The path is
// left out unless forced or required (Section 12.4: Update, Remove,
// ExternalInit, GroupContextExtensions and an empty commit need one). The
// commit stays pending.
func (s *mlsState) commit(req CommitRequest, reinit bool) (CommitResult, error) {
	if s.g.HasPendingCommit() {
		return CommitResult{}, fmt.Errorf("%w: a commit is already pending", ErrFailedPrecondition)
	}
	var byValue []*mls.Proposal
	for i, d := range req.ByValue {
		p, err := proposalFor(d, s.g.GroupID(), s.g.Members)
		if err != nil {
			return CommitResult{}, fmt.Errorf("by-value proposal %d: %w", i, err)
		}
		byValue = append(byValue, p)
	}
	undo, err := s.processProposals(req.ByReference)
	if err != nil {
		return CommitResult{}, err
	}
	res, err := s.g.Commit(&mls.CommitOptions{
		Proposals:            byValue,
		OmitPath:             !req.ForcePath,
		RatchetTreeOutOfBand: req.ExternalTree,
	})
	if err != nil {
		undo()
		return CommitResult{}, mlsErr("commit", err)
	}
	fail := func(err error) (CommitResult, error) {
		s.g.DiscardPendingCommit()
		undo()
		return CommitResult{}, err
	}
	if reinit && res.Staged.ReInit == nil {
		return fail(fmt.Errorf("%w: reinit commit: the commit carries no ReInit proposal", ErrInvalidArgument))
	}
	out := CommitResult{Commit: res.Commit, Welcome: res.Welcome}
	if req.ExternalTree {
		if out.RatchetTree, err = res.Staged.RatchetTree(); err != nil {
			return fail(mlsErr("commit: ratchet tree", err))
		}
	}
	s.pending = res.Staged
	return out, nil
}

// Commit implements State.
func (s *mlsState) Commit(_ context.Context, req CommitRequest) (CommitResult, error) {
	s.lock()
	defer s.unlock()
	return s.commit(req, false)
}

// ReInitCommit implements State: a Commit that must carry a ReInit
// (RFC 9420, Section 11.2).
func (s *mlsState) ReInitCommit(_ context.Context, req CommitRequest) (CommitResult, error) {
	s.lock()
	defer s.unlock()
	return s.commit(req, true)
}

// stage processes the by-reference proposals and then another member's
// commit, and returns the staged commit, not yet merged, with the undo of
// the proposals (RFC 9420, Section 12.4.2).
func (s *mlsState) stage(proposals [][]byte, commit []byte) (*mls.StagedCommit, func(), error) {
	undo, err := s.processProposals(proposals)
	if err != nil {
		return nil, nil, err
	}
	r, err := s.g.Process(commit)
	if err != nil {
		undo()
		return nil, nil, mlsErr("commit", err)
	}
	if r.Commit == nil {
		if r.Proposal != nil {
			s.g.DiscardProposal(r.Proposal.Ref)
		}
		undo()
		return nil, nil, fmt.Errorf("%w: the commit message is not a commit", ErrInvalidArgument)
	}
	if r.Commit.SelfRemoved {
		// The member has no next epoch, and so no epoch authenticator to
		// report (RFC 9420, Section 12.4.2); the state stays as it was.
		undo()
		return nil, nil, fmt.Errorf("%w: the commit removes this member", ErrFailedPrecondition)
	}
	return r.Commit, undo, nil
}

// HandleCommit implements State.
func (s *mlsState) HandleCommit(_ context.Context, proposals [][]byte, commit []byte) ([]byte, error) {
	s.lock()
	defer s.unlock()
	sc, undo, err := s.stage(proposals, commit)
	if err != nil {
		return nil, err
	}
	if err := s.g.MergeStagedCommit(sc); err != nil {
		undo()
		return nil, mlsErr("merging the commit", err)
	}
	return s.g.EpochAuthenticator(), nil
}

// HandlePendingCommit implements State.
func (s *mlsState) HandlePendingCommit(context.Context) ([]byte, error) {
	s.lock()
	defer s.unlock()
	if err := s.g.MergePendingCommit(); err != nil {
		return nil, mlsErr("handle pending commit", err)
	}
	s.pending = nil
	return s.g.EpochAuthenticator(), nil
}

// HandlePendingReInitCommit implements State: merges the own ReInit commit,
// after which the group can no longer send (RFC 9420, Section 11.2), and
// makes this member's KeyPackage for the new group.
func (s *mlsState) HandlePendingReInitCommit(context.Context) (ReInit, ReInitResult, error) {
	s.lock()
	defer s.unlock()
	if s.pending == nil {
		return nil, ReInitResult{}, fmt.Errorf("%w: no pending commit", ErrFailedPrecondition)
	}
	if s.pending.ReInit == nil {
		return nil, ReInitResult{}, fmt.Errorf("%w: the pending commit is not a ReInit commit", ErrFailedPrecondition)
	}
	ri, err := s.newReInit(s.pending.ReInit)
	if err != nil {
		return nil, ReInitResult{}, err
	}
	if err := s.g.MergePendingCommit(); err != nil {
		return nil, ReInitResult{}, mlsErr("handle pending reinit commit", err)
	}
	s.pending = nil
	return ri, ReInitResult{KeyPackage: ri.bundle.KeyPackage.Bytes(), EpochAuthenticator: s.g.EpochAuthenticator()}, nil
}

// HandleReInitCommit implements State.
func (s *mlsState) HandleReInitCommit(_ context.Context, proposals [][]byte, commit []byte) (ReInit, ReInitResult, error) {
	s.lock()
	defer s.unlock()
	sc, undo, err := s.stage(proposals, commit)
	if err != nil {
		return nil, ReInitResult{}, err
	}
	if sc.ReInit == nil {
		undo()
		return nil, ReInitResult{}, fmt.Errorf("%w: the commit carries no ReInit proposal", ErrInvalidArgument)
	}
	ri, err := s.newReInit(sc.ReInit)
	if err != nil {
		undo()
		return nil, ReInitResult{}, err
	}
	if err := s.g.MergeStagedCommit(sc); err != nil {
		undo()
		return nil, ReInitResult{}, mlsErr("merging the commit", err)
	}
	return ri, ReInitResult{KeyPackage: ri.bundle.KeyPackage.Bytes(), EpochAuthenticator: s.g.EpochAuthenticator()}, nil
}

// resumeOptions shapes the first commit of a branch or reinitialised group.
func resumeOptions(signer *mls.SignatureKeyPair, forcePath, externalTree bool) *mls.ResumeOptions {
	return &mls.ResumeOptions{Signer: signer, Commit: &mls.CommitOptions{OmitPath: !forcePath, RatchetTreeOutOfBand: externalTree}}
}

// subgroup merges the first commit of a new group made from s and returns
// it as a State sharing s's lock, with the outputs of the RPC.
func (s *mlsState) subgroup(ng *mls.Group, res *mls.CommitResult, externalTree bool) (State, SubgroupResult, error) {
	if err := ng.MergePendingCommit(); err != nil {
		return nil, SubgroupResult{}, mlsErr("merging the new group's commit", err)
	}
	out := SubgroupResult{Welcome: res.Welcome, EpochAuthenticator: ng.EpochAuthenticator()}
	if externalTree {
		var err error
		if out.RatchetTree, err = ng.RatchetTree(); err != nil {
			return nil, SubgroupResult{}, mlsErr("ratchet tree", err)
		}
	}
	return newState(ng, s.cfg, s.psks, s.encrypt, s.mu), out, nil
}

// CreateBranch implements State: a new group with this member, the given
// KeyPackages' members and extensions, tied to this group's current epoch
// by a resumption PSK of usage branch (RFC 9420, Section 11.3). This group
// goes on unchanged.
func (s *mlsState) CreateBranch(_ context.Context, req CreateBranchRequest) (State, SubgroupResult, error) {
	if len(req.GroupID) == 0 {
		return nil, SubgroupResult{}, fmt.Errorf("%w: empty group id", ErrInvalidArgument)
	}
	kps, err := parseKeyPackages(req.KeyPackages)
	if err != nil {
		return nil, SubgroupResult{}, err
	}
	s.lock()
	defer s.unlock()
	ng, res, err := s.g.BranchWith(req.GroupID, extensions(req.Extensions), kps, resumeOptions(nil, req.ForcePath, req.ExternalTree))
	if err != nil {
		return nil, SubgroupResult{}, mlsErr("branch", err)
	}
	return s.subgroup(ng, res, req.ExternalTree)
}

// HandleBranch implements State: join the branch with tx's KeyPackage,
// using this group's resumption PSK. The new member keeps this state's
// external PSKs and tx's.
func (s *mlsState) HandleBranch(_ context.Context, tx Transaction, welcome, ratchetTree []byte) (State, []byte, error) {
	t, ok := tx.(*mlsTx)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the transaction is not mlskit's", ErrInvalidArgument)
	}
	s.lock()
	defer s.unlock()
	psks := s.psks.with(t.psks)
	cfg := newConfig(s.encrypt, psks)
	g, err := mls.JoinFromWelcome(cfg, welcome, t.bundle, &mls.JoinOptions{RatchetTree: nilIfEmpty(ratchetTree), Previous: s.g})
	if err != nil {
		return nil, nil, mlsErr("joining the branch", err)
	}
	return newState(g, cfg, psks, s.encrypt, nil), g.EpochAuthenticator(), nil
}
