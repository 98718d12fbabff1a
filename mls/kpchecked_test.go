package mls_test

import (
	"errors"
	"testing"

	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
)

// TestCommitKeyPackageChecks: a commit adding a KeyPackage that
// ParseKeyPackage checked does not verify its signatures again, but one
// that never went through those checks still is verified at the commit
// (RFC 9420, Section 10.1): a KeyPackage whose signature was altered
// after its checks can only come from outside ParseKeyPackage, and is
// refused, with the group unchanged.
func TestCommitKeyPackageChecks(t *testing.T) {
	cs := mls.CipherSuite(1)
	cfg := &mls.Config{}
	alice, bob, carol := newClient(t, "alice", cs, cfg), newClient(t, "bob", cs, cfg), newClient(t, "carol", cs, cfg)
	var err error
	if alice.g, err = mls.NewGroup(cfg, []byte("group"), alice.cred, alice.sig, nil); err != nil {
		t.Fatal(err)
	}
	epoch := alice.g.Epoch()

	// An unchecked KeyPackage with a bad signature: refused.
	carol.keyPackage(t)
	w := *mls.WireKeyPackage(carol.bundle.KeyPackage)
	w.Signature = append([]byte(nil), w.Signature...)
	w.Signature[0] ^= 1
	bad, err := mls.Redecode(&w)
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(mls.UncheckedKeyPackage(bad))}})
	if !errors.Is(err, mls.ErrInvalidKeyPackage) {
		t.Fatalf("commit adding an unchecked KeyPackage with a bad signature: %v, want ErrInvalidKeyPackage", err)
	}
	if alice.g.Epoch() != epoch || alice.g.HasPendingCommit() {
		t.Fatal("the refused commit changed the group")
	}
	// The same KeyPackage through ParseKeyPackage: refused there.
	if _, err := mls.ParseKeyPackage(kpMessage(t, bad)); !errors.Is(err, mls.ErrInvalidKeyPackage) {
		t.Fatalf("ParseKeyPackage of a bad signature: %v", err)
	}
	// A checked KeyPackage: committed, and bob joins.
	commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.keyPackage(t))}}, nil, bob)
	if bob.g == nil || bob.g.Epoch() != alice.g.Epoch() {
		t.Fatal("bob did not join")
	}
}

// kpMessage encodes kp as an MLSMessage.
func kpMessage(t *testing.T, kp *wire.KeyPackage) []byte {
	t.Helper()
	return mls.UncheckedKeyPackage(kp).Bytes()
}
