package interop

import (
	"context"
	"fmt"
)

// This file is the seam between the interop server and mlskit's group state
// machine (package mls). It is the only file that should change when that
// package lands: NewMLSBackend must then return a Backend built on it, and
// the placeholder below goes away.

// NewMLSBackend returns the Backend that the mls-interop binary and the
// TestInteropScripts conformance test run: mlskit's own MLS implementation.
//
// For now it is a placeholder, because package mls does not exist yet: it
// reports the name "mlskit" and no cipher suites, and every other operation
// fails with ErrNotImplemented (codes.Unimplemented on the wire), so that a
// test runner can connect to the binary but runs nothing against it, and
// TestInteropScripts skips saying why.
func NewMLSBackend() Backend { return placeholder{} }

// placeholder is the Backend used until package mls exists.
type placeholder struct{}

var errPlaceholder = fmt.Errorf("%w: mlskit's MLS group state machine (package mls) is not wired into the interop server yet", ErrNotImplemented)

func (placeholder) Name() string                    { return "mlskit" }
func (placeholder) SupportedCiphersuites() []uint16 { return nil }

func (placeholder) CreateGroup(context.Context, CreateGroupRequest) (State, error) {
	return nil, errPlaceholder
}

func (placeholder) CreateKeyPackage(context.Context, CreateKeyPackageRequest) (Transaction, KeyPackageResult, error) {
	return nil, KeyPackageResult{}, errPlaceholder
}

func (placeholder) ExternalJoin(context.Context, ExternalJoinRequest) (State, ExternalJoinResult, error) {
	return nil, ExternalJoinResult{}, errPlaceholder
}

func (placeholder) NewMemberAddProposal(context.Context, NewMemberAddProposalRequest) (Transaction, NewMemberAddProposalResult, error) {
	return nil, NewMemberAddProposalResult{}, errPlaceholder
}

func (placeholder) CreateExternalSigner(context.Context, CreateExternalSignerRequest) (Signer, []byte, error) {
	return nil, nil, errPlaceholder
}
