package interop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mlskit/mlskit/interop"
	"github.com/mlskit/mlskit/mls"
)

// Tests of mlskit's Backend through its Go interface, for what the config
// scripts (interop/runner's TestInteropScripts) do not reach: the error
// contract, failed calls leaving objects as they were, and the choices the
// protocol leaves to a client.

var bg = context.Background()

// group is a test group: its members' states by name.
type group struct {
	t       *testing.T
	b       interop.Backend
	suite   uint16
	encrypt bool
	st      map[string]interop.State
}

// newTestGroup makes creator's group and adds the others in one commit.
func newTestGroup(t *testing.T, encrypt bool, creator string, others ...string) *group {
	t.Helper()
	g := &group{t: t, b: interop.NewMLSBackend(), suite: 1, encrypt: encrypt, st: map[string]interop.State{}}
	st, err := g.b.CreateGroup(bg, interop.CreateGroupRequest{GroupID: []byte("group"), CipherSuite: g.suite, EncryptHandshake: encrypt, Identity: []byte(creator)})
	if err != nil {
		t.Fatal(err)
	}
	g.st[creator] = st
	if len(others) > 0 {
		g.add(creator, others...)
	}
	return g
}

// keyPackage makes a KeyPackage for who.
func (g *group) keyPackage(who string) (interop.Transaction, []byte) {
	g.t.Helper()
	tx, kp, err := g.b.CreateKeyPackage(bg, interop.CreateKeyPackageRequest{CipherSuite: g.suite, Identity: []byte(who)})
	if err != nil {
		g.t.Fatal(err)
	}
	return tx, kp.KeyPackage
}

// add has by commit Adds for the joiners, processed by every member.
func (g *group) add(by string, joiners ...string) {
	g.t.Helper()
	var descs []interop.ProposalDescription
	txs := map[string]interop.Transaction{}
	for _, j := range joiners {
		tx, kp := g.keyPackage(j)
		txs[j] = tx
		descs = append(descs, interop.ProposalDescription{Type: interop.ProposalAdd, KeyPackage: kp})
	}
	res := g.commit(by, interop.CommitRequest{ByValue: descs})
	for _, j := range joiners {
		st, ea, err := txs[j].JoinGroup(bg, interop.JoinGroupRequest{Welcome: res.Welcome, EncryptHandshake: g.encrypt, Identity: []byte(j)})
		if err != nil {
			g.t.Fatalf("%s joining: %v", j, err)
		}
		g.st[j] = st
		g.agree(j, ea)
	}
}

// commit has by commit req and every other member process it with
// req.ByReference.
func (g *group) commit(by string, req interop.CommitRequest) interop.CommitResult {
	g.t.Helper()
	res, err := g.st[by].Commit(bg, req)
	if err != nil {
		g.t.Fatalf("%s commit: %v", by, err)
	}
	ea, err := g.st[by].HandlePendingCommit(bg)
	if err != nil {
		g.t.Fatal(err)
	}
	for name, st := range g.st {
		if name == by {
			continue
		}
		got, err := st.HandleCommit(bg, req.ByReference, res.Commit)
		if err != nil {
			g.t.Fatalf("%s handling %s's commit: %v", name, by, err)
		}
		if !bytes.Equal(got, ea) {
			g.t.Fatalf("%s's epoch authenticator differs from %s's", name, by)
		}
	}
	return res
}

// agree checks who's epoch authenticator against every member's.
func (g *group) agree(who string, ea []byte) {
	g.t.Helper()
	for name, st := range g.st {
		got, err := st.StateAuth(bg)
		if err != nil {
			g.t.Fatal(err)
		}
		if !bytes.Equal(got, ea) {
			g.t.Fatalf("%s and %s disagree on the epoch authenticator", name, who)
		}
	}
}

// talk checks that from's message reaches every other member.
func (g *group) talk(from string) {
	g.t.Helper()
	ct, err := g.st[from].Protect(bg, []byte("ad"), []byte("hello from "+from))
	if err != nil {
		g.t.Fatal(err)
	}
	for name, st := range g.st {
		if name == from {
			continue
		}
		ad, pt, err := st.Unprotect(bg, ct)
		if err != nil || string(ad) != "ad" || string(pt) != "hello from "+from {
			g.t.Fatalf("%s reading %s: %q %q %v", name, from, ad, pt, err)
		}
	}
}

func wantErr(t *testing.T, what string, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Fatalf("%s: got %v, want %v", what, err, class)
	}
}

func modes() []bool { return []bool{false, true} }

// TestMLSBackendFailedCommitLeavesState: a Commit or HandleCommit that
// fails after processing its by-reference proposals takes them back, so
// the same call with good inputs then succeeds and commits exactly what it
// names. With PrivateMessage handshakes the retry cannot process the same
// proposal message again: its key was used up (RFC 9420, Section 9.2), the
// one documented exception.
func TestMLSBackendFailedCommitLeavesState(t *testing.T) {
	for _, encrypt := range modes() {
		t.Run(fmt.Sprintf("encrypt=%v", encrypt), func(t *testing.T) {
			g := newTestGroup(t, encrypt, "alice", "bob", "carol")
			up, err := g.st["bob"].UpdateProposal(bg)
			if err != nil {
				t.Fatal(err)
			}
			// A KeyPackage for another suite passes parsing but fails the
			// commit (RFC 9420, Section 10.1), after bob's Update was processed.
			_, other, err := g.b.CreateKeyPackage(bg, interop.CreateKeyPackageRequest{CipherSuite: 2, Identity: []byte("dave")})
			if err != nil {
				t.Fatal(err)
			}
			bad := interop.CommitRequest{ByReference: [][]byte{up},
				ByValue: []interop.ProposalDescription{{Type: interop.ProposalAdd, KeyPackage: other.KeyPackage}}}
			_, err = g.st["alice"].Commit(bg, bad)
			wantErr(t, "commit with a bad add", err, interop.ErrInvalidArgument)
			if _, err := g.st["alice"].HandlePendingCommit(bg); !errors.Is(err, interop.ErrFailedPrecondition) {
				t.Fatalf("a failed commit left a pending commit: %v", err)
			}

			// alice may still send: no received proposal is left pending
			// (RFC 9420, Section 12.4 forbids application data then).
			g.talk("alice")
			good := interop.CommitRequest{ByReference: [][]byte{up}}
			if encrypt {
				_, err := g.st["alice"].Commit(bg, good)
				wantErr(t, "reprocessing a private proposal", err, interop.ErrInvalidArgument)
				// An empty commit still works and commits nothing stale.
				good = interop.CommitRequest{}
			}
			res, err := g.st["alice"].Commit(bg, good)
			if err != nil {
				t.Fatal(err)
			}
			// carol first gets a broken commit: nothing changes.
			broken := bytes.Clone(res.Commit)
			broken[len(broken)-1] ^= 1
			_, err = g.st["carol"].HandleCommit(bg, good.ByReference, broken)
			wantErr(t, "a broken commit", err, interop.ErrInvalidArgument)
			if !encrypt {
				// The Update carol processed was taken back: she can
				// process it again.
				if _, err := g.st["carol"].HandleCommit(bg, good.ByReference, res.Commit); err != nil {
					t.Fatalf("carol, after a broken commit: %v", err)
				}
			}
			ea, err := g.st["alice"].HandlePendingCommit(bg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.st["bob"].HandleCommit(bg, good.ByReference, res.Commit); err != nil {
				t.Fatal(err)
			}
			if encrypt {
				// carol decrypted the broken commit's sender data, which
				// used up the key of the real one.
				delete(g.st, "carol")
			}
			g.agree("alice", ea)
			g.talk("bob")
		})
	}
}

// TestMLSBackendErrors checks the error contract: bad input is
// ErrInvalidArgument, a call the state does not allow is
// ErrFailedPrecondition, and neither changes anything.
//
// Handshakes are public here, so that a message a failed call processed can
// be processed again.
func TestMLSBackendErrors(t *testing.T) {
	g := newTestGroup(t, false, "alice", "bob")
	alice, bob := g.st["alice"], g.st["bob"]
	b := g.b

	_, err := b.CreateGroup(bg, interop.CreateGroupRequest{GroupID: []byte("g"), CipherSuite: 0xF001, Identity: []byte("x")})
	wantErr(t, "a suite not offered", err, interop.ErrInvalidArgument)
	_, err = b.CreateGroup(bg, interop.CreateGroupRequest{CipherSuite: 1, Identity: []byte("x")})
	wantErr(t, "an empty group id", err, interop.ErrInvalidArgument)

	_, err = alice.HandlePendingCommit(bg)
	wantErr(t, "no pending commit", err, interop.ErrFailedPrecondition)
	_, _, err = alice.HandlePendingReInitCommit(bg)
	wantErr(t, "no pending reinit commit", err, interop.ErrFailedPrecondition)
	_, err = alice.RemoveProposal(bg, []byte("nobody"))
	wantErr(t, "removing an unknown identity", err, interop.ErrInvalidArgument)
	_, err = alice.AddProposal(bg, []byte("not a key package"))
	wantErr(t, "a malformed key package", err, interop.ErrInvalidArgument)
	_, err = alice.AddExternalSigner(bg, []byte{1, 2, 3})
	wantErr(t, "a malformed external sender", err, interop.ErrInvalidArgument)
	_, _, err = alice.Unprotect(bg, []byte{0, 1, 0, 2})
	wantErr(t, "a malformed ciphertext", err, interop.ErrInvalidArgument)

	// A handshake message is not application data.
	up, err := bob.UpdateProposal(bg)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = alice.Unprotect(bg, up)
	wantErr(t, "unprotecting a proposal", err, interop.ErrInvalidArgument)

	// A pending commit blocks a second one; a normal commit is not a
	// ReInit commit.
	res, err := alice.Commit(bg, interop.CommitRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.Commit(bg, interop.CommitRequest{})
	wantErr(t, "a second pending commit", err, interop.ErrFailedPrecondition)
	_, _, err = alice.HandlePendingReInitCommit(bg)
	wantErr(t, "a normal commit as a reinit", err, interop.ErrFailedPrecondition)
	_, _, err = bob.HandleReInitCommit(bg, nil, res.Commit)
	wantErr(t, "handling a normal commit as a reinit", err, interop.ErrInvalidArgument)
	_, err = alice.ReInitCommit(bg, interop.CommitRequest{})
	wantErr(t, "reinit commit while one is pending", err, interop.ErrFailedPrecondition)
	ea, err := alice.HandlePendingCommit(bg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := bob.HandleCommit(bg, nil, res.Commit); err != nil || !bytes.Equal(got, ea) {
		t.Fatalf("bob after the failed calls: %v", err)
	}
	_, err = alice.ReInitCommit(bg, interop.CommitRequest{})
	wantErr(t, "a reinit commit without a ReInit", err, interop.ErrInvalidArgument)
	if _, err := alice.HandlePendingCommit(bg); !errors.Is(err, interop.ErrFailedPrecondition) {
		t.Fatalf("the refused reinit commit stayed pending: %v", err)
	}

	// A Welcome that is not for the KeyPackage leaves the transaction
	// usable.
	tx, kp := g.keyPackage("carol")
	_, _, err = tx.JoinGroup(bg, interop.JoinGroupRequest{Welcome: []byte("garbage")})
	wantErr(t, "a malformed welcome", err, interop.ErrInvalidArgument)
	res = g.commit("alice", interop.CommitRequest{ByValue: []interop.ProposalDescription{{Type: interop.ProposalAdd, KeyPackage: kp}}})
	if _, _, err := tx.JoinGroup(bg, interop.JoinGroupRequest{Welcome: res.Welcome, EncryptHandshake: true}); err != nil {
		t.Fatalf("joining after a failed join: %v", err)
	}
}

// TestMLSBackendRemovedMember: a member that handles the commit removing it
// gets ErrFailedPrecondition (it has no next epoch to report) and stays in
// its last epoch.
func TestMLSBackendRemovedMember(t *testing.T) {
	g := newTestGroup(t, false, "alice", "bob", "carol")
	before, _ := g.st["carol"].StateAuth(bg)
	res, err := g.st["alice"].Commit(bg, interop.CommitRequest{ByValue: []interop.ProposalDescription{{Type: interop.ProposalRemove, RemovedID: []byte("carol")}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.st["carol"].HandleCommit(bg, nil, res.Commit)
	wantErr(t, "handling one's own removal", err, interop.ErrFailedPrecondition)
	if after, _ := g.st["carol"].StateAuth(bg); !bytes.Equal(before, after) {
		t.Error("the removed member's state changed")
	}
	if _, err := g.st["alice"].HandlePendingCommit(bg); err != nil {
		t.Fatal(err)
	}
	if _, err := g.st["bob"].HandleCommit(bg, nil, res.Commit); err != nil {
		t.Fatal(err)
	}
}

// TestMLSBackendOwnProposalByReference: a member given its own proposal by
// reference (the reinit action when proposer and committer are one actor)
// skips it: it is cached already and a member cannot process its own
// messages.
func TestMLSBackendOwnProposalByReference(t *testing.T) {
	for _, encrypt := range modes() {
		g := newTestGroup(t, encrypt, "alice", "bob")
		p, err := g.st["alice"].GroupContextExtensionsProposal(bg, []interop.Extension{{Type: 3, Data: []byte{0, 0, 0}}})
		if err != nil {
			t.Fatal(err)
		}
		g.commit("alice", interop.CommitRequest{ByReference: [][]byte{p}})
		g.talk("bob")
	}
}

// TestMLSBackendExternalSenders: AddExternalSigner keeps the other
// GroupContext extensions and appends to external_senders; a signer's
// proposals carry its index there whatever index the request names (the
// working group's runner always sends 0).
func TestMLSBackendExternalSenders(t *testing.T) {
	g := newTestGroup(t, true, "alice", "bob")
	reqCaps := interop.Extension{Type: 3, Data: []byte{0, 0, 0}} // required_capabilities, empty
	gce, err := g.st["alice"].GroupContextExtensionsProposal(bg, []interop.Extension{reqCaps})
	if err != nil {
		t.Fatal(err)
	}
	g.commit("alice", interop.CommitRequest{ByReference: [][]byte{gce}})
	var signers []interop.Signer
	for _, name := range []string{"ds1", "ds2"} {
		sg, es, err := g.b.CreateExternalSigner(bg, interop.CreateExternalSignerRequest{CipherSuite: g.suite, Identity: []byte(name)})
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, sg)
		p, err := g.st["bob"].AddExternalSigner(bg, es)
		if err != nil {
			t.Fatal(err)
		}
		g.commit("alice", interop.CommitRequest{ByReference: [][]byte{p}})
	}
	gi, err := g.st["alice"].GroupInfo(bg, true)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := mls.NewPublicGroup(&mls.Config{CredentialValidator: mls.AcceptAllCredentials{}}, gi.GroupInfo, gi.RatchetTree)
	if err != nil {
		t.Fatal(err)
	}
	exts := pg.Extensions()
	if len(exts) != 2 || exts[0].Type != 3 || exts[1].Type != 5 {
		t.Fatalf("extensions after adding two signers: %v", exts)
	}
	// ds2 (index 1) proposes with the request's index left at 0.
	p, err := signers[1].ExternalSignerProposal(bg, interop.ExternalSignerProposalRequest{
		SignerIndex: 0, GroupInfo: gi.GroupInfo, RatchetTree: gi.RatchetTree,
		Description: interop.ProposalDescription{Type: interop.ProposalRemove, RemovedID: []byte("bob")},
	})
	if err != nil {
		t.Fatal(err)
	}
	delete(g.st, "bob")
	g.commit("alice", interop.CommitRequest{ByReference: [][]byte{p}})

	// A signer the group does not list cannot propose.
	stranger, _, err := g.b.CreateExternalSigner(bg, interop.CreateExternalSignerRequest{CipherSuite: g.suite, Identity: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	gi, _ = g.st["alice"].GroupInfo(bg, false)
	_, err = stranger.ExternalSignerProposal(bg, interop.ExternalSignerProposalRequest{GroupInfo: gi.GroupInfo,
		Description: interop.ProposalDescription{Type: interop.ProposalGroupContextExtensions}})
	wantErr(t, "a signer not in external_senders", err, interop.ErrFailedPrecondition)
}

// TestMLSBackendExternalTree: with external_tree the Welcome carries no
// tree, the commit result does, and a joiner needs it.
func TestMLSBackendExternalTree(t *testing.T) {
	g := newTestGroup(t, true, "alice", "bob")
	tx, kp := g.keyPackage("carol")
	res, err := g.st["alice"].Commit(bg, interop.CommitRequest{ExternalTree: true,
		ByValue: []interop.ProposalDescription{{Type: interop.ProposalAdd, KeyPackage: kp}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RatchetTree) == 0 {
		t.Fatal("no ratchet tree returned")
	}
	ea, err := g.st["alice"].HandlePendingCommit(bg)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = tx.JoinGroup(bg, interop.JoinGroupRequest{Welcome: res.Welcome, EncryptHandshake: true})
	wantErr(t, "joining without the external tree", err, interop.ErrInvalidArgument)
	st, got, err := tx.JoinGroup(bg, interop.JoinGroupRequest{Welcome: res.Welcome, EncryptHandshake: true, RatchetTree: res.RatchetTree})
	if err != nil || !bytes.Equal(got, ea) {
		t.Fatalf("joining with the tree: %v", err)
	}
	g.st["carol"] = st
	if _, err := g.st["bob"].HandleCommit(bg, nil, res.Commit); err != nil {
		t.Fatal(err)
	}
	g.talk("carol")
}
