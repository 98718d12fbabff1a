package interop

import (
	"bytes"
	"context"
	"fmt"

	"github.com/mlskit/mlskit/mls"
)

// mlsTx is a prospective member (a transaction_id): a KeyPackage and its
// private keys, waiting for a Welcome (RFC 9420, Section 12.4.3.1), and the
// external PSKs stored for the join.
type mlsTx struct {
	bundle *mls.KeyPackageBundle
	psks   *pskStore
}

// newTransaction makes a KeyPackage (RFC 9420, Section 10) for a Basic
// credential named identity, with a fresh signature key.
func newTransaction(cs mls.CipherSuite, identity []byte) (*mlsTx, error) {
	sig, cred, err := newIdentity(cs, identity)
	if err != nil {
		return nil, err
	}
	psks := newPSKStore()
	bundle, err := mls.NewKeyPackage(newConfig(true, psks), cred, sig, nil)
	if err != nil {
		return nil, mlsErr("creating the key package", err)
	}
	return &mlsTx{bundle: bundle, psks: psks}, nil
}

// result returns the KeyPackage and, as the protocol asks, its private
// keys (the runner may replay them in passive-client tests).
func (t *mlsTx) result() KeyPackageResult {
	return KeyPackageResult{
		KeyPackage:     t.bundle.KeyPackage.Bytes(),
		InitPriv:       bytes.Clone(t.bundle.InitKey),
		EncryptionPriv: bytes.Clone(t.bundle.LeafKey),
		SignaturePriv:  t.bundle.Signer.PrivateKey(),
	}
}

// StorePSK implements Transaction.
func (t *mlsTx) StorePSK(_ context.Context, id, secret []byte) error {
	t.psks.put(id, secret)
	return nil
}

// JoinGroup implements Transaction.
func (t *mlsTx) JoinGroup(_ context.Context, req JoinGroupRequest) (State, []byte, error) {
	cfg := newConfig(req.EncryptHandshake, t.psks)
	g, err := mls.JoinFromWelcome(cfg, req.Welcome, t.bundle, &mls.JoinOptions{RatchetTree: nilIfEmpty(req.RatchetTree)})
	if err != nil {
		return nil, nil, mlsErr("join", err)
	}
	return newState(g, cfg, t.psks, req.EncryptHandshake, nil), g.EpochAuthenticator(), nil
}

// Close erases the private keys of a KeyPackage that was never used (Free).
func (t *mlsTx) Close() error {
	t.bundle.Erase()
	return nil
}

// mlsReInit is a member between a ReInit commit and the new group's
// Welcome (a reinit_id, RFC 9420, Section 11.2): the old group, whose last
// epoch's resumption PSK ties the two groups together, and this member's
// KeyPackage for the new group.
type mlsReInit struct {
	old    *mlsState
	info   *mls.ReInitInfo
	bundle *mls.KeyPackageBundle
}

// newReInit makes the member's KeyPackage for the group a ReInit proposal
// describes: its cipher suite, a fresh signature key, the same identity.
// s is locked.
func (s *mlsState) newReInit(info *mls.ReInitInfo) (*mlsReInit, error) {
	me, ok := s.g.Member(s.g.LeafIndex())
	if !ok {
		return nil, fmt.Errorf("%w: this member has no leaf", ErrFailedPrecondition)
	}
	sig, err := mls.GenerateSignatureKeyPair(info.CipherSuite, nil)
	if err != nil {
		return nil, mlsErr(fmt.Sprintf("the new group's cipher suite 0x%04x", uint16(info.CipherSuite)), err)
	}
	bundle, err := mls.NewKeyPackage(s.cfg, me.Credential, sig, nil)
	if err != nil {
		return nil, mlsErr("creating the key package for the new group", err)
	}
	return &mlsReInit{old: s, info: info, bundle: bundle}, nil
}

// ReInitWelcome implements ReInit: the new group, with the other members'
// KeyPackages and the resumption PSK of usage reinit (RFC 9420, Section
// 11.2).
func (r *mlsReInit) ReInitWelcome(_ context.Context, req ReInitWelcomeRequest) (State, SubgroupResult, error) {
	kps, err := parseKeyPackages(req.KeyPackages)
	if err != nil {
		return nil, SubgroupResult{}, err
	}
	s := r.old
	s.lock()
	defer s.unlock()
	ng, res, err := s.g.ReInitGroup(kps, resumeOptions(r.bundle.Signer, req.ForcePath, req.ExternalTree))
	if err != nil {
		return nil, SubgroupResult{}, mlsErr("reinit", err)
	}
	return s.subgroup(ng, res, req.ExternalTree)
}

// HandleReInitWelcome implements ReInit.
func (r *mlsReInit) HandleReInitWelcome(_ context.Context, welcome, ratchetTree []byte) (State, []byte, error) {
	s := r.old
	s.lock()
	defer s.unlock()
	g, err := mls.JoinFromWelcome(s.cfg, welcome, r.bundle, &mls.JoinOptions{RatchetTree: nilIfEmpty(ratchetTree), Previous: s.g})
	if err != nil {
		return nil, nil, mlsErr("joining the new group", err)
	}
	return newState(g, s.cfg, s.psks, s.encrypt, nil), g.EpochAuthenticator(), nil
}

// Close erases the new KeyPackage's private keys (Free).
func (r *mlsReInit) Close() error {
	r.bundle.Erase()
	return nil
}

// mlsSigner is an external sender (a signer_id, RFC 9420, Section
// 12.1.8.1).
type mlsSigner struct {
	sig *mls.SignatureKeyPair
}

// ExternalSignerProposal implements Signer. The signer's index is looked up
// in the group's external_senders by its signature key rather than taken
// from the request: the working group's runner always sends 0.
func (x *mlsSigner) ExternalSignerProposal(_ context.Context, req ExternalSignerProposalRequest) ([]byte, error) {
	pg, err := mls.NewPublicGroup(newConfig(false, nil), req.GroupInfo, nilIfEmpty(req.RatchetTree))
	if err != nil {
		return nil, mlsErr("reading the group info", err)
	}
	if pg.CipherSuite() != x.sig.CipherSuite() {
		return nil, fmt.Errorf("%w: the group's cipher suite is not the signer's", ErrInvalidArgument)
	}
	index, err := externalSenderIndex(pg.Extensions(), x.sig.PublicKey())
	if err != nil {
		return nil, err
	}
	p, err := proposalFor(req.Description, pg.GroupID(), pg.Members)
	if err != nil {
		return nil, err
	}
	msg, err := mls.ExternalProposal(x.sig, index, pg.GroupID(), pg.Epoch(), p, nil)
	if err != nil {
		return nil, mlsErr("external proposal", err)
	}
	return msg, nil
}

var (
	_ Backend     = (*mlsBackend)(nil)
	_ State       = (*mlsState)(nil)
	_ Transaction = (*mlsTx)(nil)
	_ ReInit      = (*mlsReInit)(nil)
	_ Signer      = (*mlsSigner)(nil)
)
