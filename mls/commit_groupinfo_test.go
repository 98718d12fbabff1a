package mls_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mlskit/mlskit/mls"
)

// TestCommitGroupInfoOnRequest: a commit returns the new epoch's GroupInfo
// only when CommitOptions.GroupInfo asks for it (building it encodes and
// signs the whole tree, issue 14); a Welcome still carries its own, and the
// one asked for lets a public group follow the new epoch, with the tree in
// it unless RatchetTreeOutOfBand.
func TestCommitGroupInfoOnRequest(t *testing.T) {
	for _, pub := range []bool{false, true} {
		cfg := &mls.Config{PublicHandshakes: pub}
		alice := newClient(t, "alice", mls.X25519_AES128GCM_SHA256_Ed25519, cfg)
		bob := newClient(t, "bob", mls.X25519_AES128GCM_SHA256_Ed25519, cfg)
		g, err := mls.NewGroup(cfg, []byte("gi on request"), alice.cred, alice.sig, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.keyPackage(t))}})
		if err != nil {
			t.Fatal(err)
		}
		if res.GroupInfo != nil || res.Welcome == nil {
			t.Fatalf("add without asking: GroupInfo %d B, Welcome %d B", len(res.GroupInfo), len(res.Welcome))
		}
		if err := g.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		if _, err := mls.JoinFromWelcome(cfg, res.Welcome, bob.bundle, nil); err != nil {
			t.Fatalf("joining from a Welcome of a commit that returned no GroupInfo: %v", err)
		}
		res, err = g.Commit(nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.GroupInfo != nil {
			t.Fatal("Commit(nil) returned a GroupInfo")
		}
		g.DiscardPendingCommit()
		for _, oob := range []bool{false, true} {
			res, err = g.Commit(&mls.CommitOptions{GroupInfo: true, RatchetTreeOutOfBand: oob})
			if err != nil {
				t.Fatal(err)
			}
			if res.GroupInfo == nil {
				t.Fatal("GroupInfo asked for and not returned")
			}
			info, err := mls.InspectMessage(res.GroupInfo)
			if err != nil {
				t.Fatal(err)
			}
			if info.Epoch != g.Epoch()+1 {
				t.Fatalf("GroupInfo for epoch %d, want %d", info.Epoch, g.Epoch()+1)
			}
			_, err = mls.NewPublicGroup(&mls.Config{CredentialValidator: mls.AcceptAllCredentials{}}, res.GroupInfo, nil)
			if oob == (err == nil) {
				t.Fatalf("out of band %v: following from the GroupInfo alone: %v", oob, err)
			}
			g.DiscardPendingCommit()
		}
	}
}

// TestWelcomeOutlivesNextCommit: a commit that adds members without asking
// for the GroupInfo lays the Welcome's GroupInfo out in a buffer later
// commits reuse (issue 14: it is as large as the tree). The Welcome must
// not share it: after further such commits, in this group and another,
// have cleared and overwritten that buffer, the first Welcome still joins.
func TestWelcomeOutlivesNextCommit(t *testing.T) {
	cfg := &mls.Config{}
	alice := newClient(t, "alice", mls.X25519_AES128GCM_SHA256_Ed25519, cfg)
	bob := newClient(t, "bob", mls.X25519_AES128GCM_SHA256_Ed25519, cfg)
	g, err := mls.NewGroup(cfg, []byte("welcome outlives"), alice.cred, alice.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(bob.keyPackage(t))}})
	if err != nil {
		t.Fatal(err)
	}
	kept := bytes.Clone(first.Welcome)
	if err := g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		other := newClient(t, fmt.Sprintf("other %d", i), mls.X25519_AES128GCM_SHA256_Ed25519, cfg)
		h, err := mls.NewGroup(cfg, []byte(fmt.Sprintf("other group %d", i)), other.cred, other.sig, nil)
		if err != nil {
			t.Fatal(err)
		}
		x := newClient(t, fmt.Sprintf("x %d", i), mls.X25519_AES128GCM_SHA256_Ed25519, cfg)
		for _, grp := range []*mls.Group{g, h} {
			if _, err := grp.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(x.keyPackage(t))}}); err != nil {
				t.Fatal(err)
			}
			grp.DiscardPendingCommit()
		}
	}
	if !bytes.Equal(first.Welcome, kept) {
		t.Fatal("the Welcome changed after later commits")
	}
	if _, err := mls.JoinFromWelcome(cfg, first.Welcome, bob.bundle, nil); err != nil {
		t.Fatalf("joining from the first Welcome after later commits: %v", err)
	}
}
