package mls_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage/memory"
)

// Regression tests for the group-level findings of issue 12 (hostile
// peers): each drives whole groups through the public API, with a
// correctly signed message or Welcome whose content breaks, or exploits
// the lack of, a rule.

// clockedClient is a client with its own clock, so that members can
// process a message at different times.
func clockedClient(t *testing.T, name string, at *time.Time, tweak func(*mls.Config)) *client {
	t.Helper()
	cfg := &mls.Config{Rand: seededRand("regress " + name), Now: func() time.Time { return *at }}
	if tweak != nil {
		tweak(cfg)
	}
	return newClient(t, name, fastSuite, cfg)
}

// asValidation fails unless err is a *ValidationError of section.
func asValidation(t *testing.T, what string, err error, section string) {
	t.Helper()
	var ve *mls.ValidationError
	if !errors.As(err, &ve) || ve.Section != section {
		t.Fatalf("%s: %v, want a *ValidationError of Section %s", what, err, section)
	}
}

// TestRegressJoinRefusesExistingGroupID (finding 2): a Welcome for a
// group_id the client already has must not replace the stored group
// (RFC 9420, Section 12.4.3.1: group_id is unique among the client's
// groups). Mallory holds one of bob's published KeyPackages and knows the
// id of a group bob is in; her Welcome for a fresh group with that id is
// refused, and bob's stored group and KeyPackage are left as they were.
func TestRegressJoinRefusesExistingGroupID(t *testing.T) {
	seeded(t, 1201)
	ctx := context.Background()
	cfg := detConfig("groupid", false)
	st := memory.New()
	alice := newGroupClient(t, "alice", fastSuite, cfg, nil)
	bob := newClient(t, "bob", fastSuite, cfg)
	kp1 := bob.keyPackage(t)
	if err := mls.SaveKeyPackage(ctx, st, bob.bundle); err != nil {
		t.Fatal(err)
	}
	res, err := alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if bob.g, err = mls.JoinFromStore(ctx, cfg, st, res.Welcome, nil); err != nil {
		t.Fatal(err)
	}
	checkAgree(t, []*client{alice, bob})
	want := bob.g.EpochAuthenticator()

	// Bob publishes a second KeyPackage; mallory uses it.
	kp2 := bob.keyPackage(t)
	if err := mls.SaveKeyPackage(ctx, st, bob.bundle); err != nil {
		t.Fatal(err)
	}
	mallory := newClient(t, "mallory", fastSuite, cfg)
	mallory.g, err = mls.NewGroup(cfg, alice.g.GroupID(), mallory.cred, mallory.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	evil, err := mallory.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp2)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mls.JoinFromStore(ctx, cfg, st, evil.Welcome, nil)
	wantErr(t, "JoinFromStore of a Welcome reusing a stored group_id", err, mls.ErrGroupExists)
	asValidation(t, "JoinFromStore of a Welcome reusing a stored group_id", err, "12.4.3.1")
	loaded, err := mls.LoadGroup(ctx, cfg, st, alice.g.GroupID())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.EpochAuthenticator(), want) {
		t.Fatal("the stored group was replaced")
	}
	if _, err := mls.LoadKeyPackage(ctx, st, kp2.Ref()); err != nil {
		t.Fatalf("the refused Welcome consumed the KeyPackage: %v", err)
	}
	// JoinFromWelcome refuses it too when given the store.
	_, err = mls.JoinFromWelcome(cfg, evil.Welcome, bob.bundle, &mls.JoinOptions{Store: st})
	wantErr(t, "JoinFromWelcome with a store holding the group_id", err, mls.ErrGroupExists)
	// The genuine group goes on.
	bob.g = loaded
	commit(t, alice, nil, []*client{bob})
	checkAgree(t, []*client{alice, bob})
}

// TestRegressLateAddCommit (finding 3): a member that processes an Add
// commit after the added KeyPackage expired accepts it, with a warning,
// and stays in the group (RFC 9420, Section 7.3 only RECOMMENDS the
// lifetime check for received leaves); with StrictLeafLifetimes it
// refuses it. The committer itself never adds an expired KeyPackage.
func TestRegressLateAddCommit(t *testing.T) {
	seeded(t, 1202)
	t0 := fixedNow()
	aliceNow, bobNow, carolNow, daveNow := t0, t0, t0, t0
	alice := clockedClient(t, "alice", &aliceNow, nil)
	bob := clockedClient(t, "bob", &bobNow, nil)
	strict := clockedClient(t, "strict", &bobNow, func(c *mls.Config) { c.StrictLeafLifetimes = true })
	carol := clockedClient(t, "carol", &carolNow, func(c *mls.Config) { c.KeyPackageLifetime = time.Hour })
	all := groupOf(t, alice, nil, []*client{bob, strict}, nil)

	kp := carol.keyPackage(t)
	res, err := alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}})
	if err != nil {
		t.Fatal(err)
	}
	// Bob and strict come back online three hours later.
	bobNow = t0.Add(3 * time.Hour)
	before := fingerprint(t, strict.g)
	_, err = strict.g.Process(res.Commit)
	wantErr(t, "strict member processing an Add of an expired KeyPackage", err, mls.ErrInvalidKeyPackage)
	unchangedButBurned(t, "refused late Add", strict.g, before) // its handshake key is used up
	r, err := bob.g.Process(res.Commit)
	if err != nil {
		t.Fatalf("bob processing an Add commit after the KeyPackage expired: %v", err)
	}
	if len(r.Commit.Warnings) != 1 {
		t.Fatalf("warnings %v, want one about the expired KeyPackage", r.Commit.Warnings)
	}
	wantErr(t, "warning", r.Commit.Warnings[0], mls.ErrInvalidKeyPackage)
	if err := bob.g.MergeStagedCommit(r.Commit); err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	carol.g, err = mls.JoinFromWelcome(carol.cfg, res.Welcome, carol.bundle, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkAgree(t, []*client{alice, bob, carol})

	// A committer does not add an expired KeyPackage (Section 10.1):
	// inline it fails, and cached it is left out of the default commit.
	aliceNow = t0.Add(3 * time.Hour)
	dave := clockedClient(t, "dave", &daveNow, func(c *mls.Config) { c.KeyPackageLifetime = time.Hour })
	old := dave.keyPackage(t)
	_, err = alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(old)}})
	wantErr(t, "committing an expired KeyPackage", err, mls.ErrInvalidKeyPackage)
	if _, err := bob.g.ProposeAdd(old); err == nil {
		t.Fatal("proposing an expired KeyPackage succeeded")
	}
	// Carol, whose clock is behind, proposes it while it looks valid.
	p, err := carol.g.ProposeAdd(old)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, carol, p, alice, bob)
	res = commit(t, alice, nil, []*client{bob, carol})
	if len(res.Dropped) != 1 || len(res.Staged.Added) != 0 {
		t.Fatalf("dropped %v, added %d: want the expired Add left out", res.Dropped, len(res.Staged.Added))
	}
	wantErr(t, "expired cached Add", res.Dropped[0].Reason, mls.ErrInvalidProposal)
	checkAgree(t, []*client{alice, bob, carol})
	_ = all
}

// TestRegressStaleMemberStillJoinable (finding 3): a member whose
// KeyPackage leaf has expired because it never updated does not make the
// group unjoinable: Welcomes and external joins succeed, reporting the
// leaf as a warning, unless the joiner chose StrictLeafLifetimes.
func TestRegressStaleMemberStillJoinable(t *testing.T) {
	seeded(t, 1203)
	t0 := fixedNow()
	now := t0
	short := func(c *mls.Config) { c.KeyPackageLifetime = time.Hour }
	alice := clockedClient(t, "alice", &now, nil)
	bob := clockedClient(t, "bob", &now, short)
	groupOf(t, alice, nil, []*client{bob}, nil)

	// Two days later bob has still not updated; dave and strict join.
	now = t0.Add(48 * time.Hour)
	dave := clockedClient(t, "dave", &now, nil)
	strict := clockedClient(t, "strict", &now, func(c *mls.Config) { c.StrictLeafLifetimes = true })
	kd, ks := dave.keyPackage(t), strict.keyPackage(t)
	res, err := alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kd), mls.AddProposal(ks)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mls.JoinFromWelcome(strict.cfg, res.Welcome, strict.bundle, nil)
	wantErr(t, "strict joiner of a tree with an expired leaf", err, mls.ErrInvalidTree)
	dave.g, err = mls.JoinFromWelcome(dave.cfg, res.Welcome, dave.bundle, nil)
	if err != nil {
		t.Fatalf("joining a group whose member never updated: %v", err)
	}
	if w := dave.g.JoinWarnings(); len(w) != 1 {
		t.Fatalf("join warnings %v, want one for bob's leaf", w)
	} else {
		asValidation(t, "join warning", w[0], "7.3")
	}
	deliver(t, alice, res.Commit, bob)
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	members := []*client{alice, bob, dave}
	checkAgree(t, members)

	// An external join from the GroupInfo works as well.
	gi, err := alice.g.GroupInfo(true, true)
	if err != nil {
		t.Fatal(err)
	}
	erin := clockedClient(t, "erin", &now, nil)
	ej, err := mls.ExternalJoin(erin.cfg, gi, erin.cred, erin.sig, nil)
	if err != nil {
		t.Fatalf("external join of a group whose member never updated: %v", err)
	}
	if len(ej.Warnings) != 1 {
		t.Fatalf("external join warnings %v, want one", ej.Warnings)
	}
	erin.g = ej.Group
	deliver(t, erin, ej.Commit, members...)
	checkAgree(t, append(members, erin))
}

// TestRegressOwnLifetimesBounded (finding 3): what this client creates
// has a bounded lifetime within MaxLeafLifetime (RFC 9420, Section 7.2):
// a creator's leaf is no longer valid forever, so a joiner enforcing a
// maximum lifetime accepts a group whose creator has not yet replaced its
// leaf; a Config whose KeyPackageLifetime exceeds MaxLeafLifetime creates
// nothing.
func TestRegressOwnLifetimesBounded(t *testing.T) {
	seeded(t, 1204)
	now := fixedNow()
	alice := clockedClient(t, "alice", &now, nil)
	bob := clockedClient(t, "bob", &now, func(c *mls.Config) {
		c.StrictLeafLifetimes = true
		c.MaxLeafLifetime = 400 * 24 * time.Hour
	})
	var err error
	alice.g, err = mls.NewGroup(alice.cfg, []byte("group"), alice.cred, alice.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No path: the creator's own leaf stays in the tree bob receives.
	commit(t, alice, &mls.CommitOptions{OmitPath: true, Proposals: []*mls.Proposal{mls.AddProposal(bob.keyPackage(t))}}, nil, bob)
	checkAgree(t, []*client{alice, bob})

	bad := &mls.Config{Now: fixedNow, KeyPackageLifetime: 2 * time.Hour, MaxLeafLifetime: 2 * time.Hour}
	if _, err := mls.NewGroup(bad, []byte("g"), alice.cred, alice.sig, nil); err == nil {
		t.Fatal("NewGroup made a leaf with a lifetime above MaxLeafLifetime")
	}
	if _, err := mls.NewKeyPackage(bad, alice.cred, alice.sig, nil); err == nil {
		t.Fatal("NewKeyPackage made a KeyPackage with a lifetime above MaxLeafLifetime")
	}
}

// TestRegressDefaultCommitDropsInvalid (finding 5): cached proposals that
// cannot be committed (a PSK nobody has, the same KeyPackage added twice,
// once as a new member's own proposal) do not wedge the group: Commit(nil)
// leaves them out, reports each with its reason, and Encrypt works again
// once the commit is merged (RFC 9420, Section 12.4).
func TestRegressDefaultCommitDropsInvalid(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 1205)
			cfg := detConfig("drop "+m.name, m.pub)
			cfg.ExternalProposals = mls.AllowExternalProposals
			all := threeParty(t, fastSuite, cfg)
			alice, bob, carol := all[0], all[1], all[2]

			// A PSK id nobody has.
			p, err := bob.g.ProposeExternalPSK([]byte("nobody has this"))
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, p, alice, carol)
			if _, err := alice.g.Encrypt([]byte("x"), nil); !errors.Is(err, mls.ErrPendingProposals) {
				t.Fatalf("Encrypt with a proposal pending: %v", err)
			}
			res := commit(t, alice, nil, all)
			if len(res.Dropped) != 1 || res.Dropped[0].Proposal.Type != mls.ProposalPSK {
				t.Fatalf("dropped %v, want the PSK proposal", res.Dropped)
			}
			wantErr(t, "dropped PSK", res.Dropped[0].Reason, mls.ErrMissingPSK)
			checkAgree(t, all)

			// The same KeyPackage proposed by two members and by its
			// owner as a new member.
			dave := newClient(t, "dave", fastSuite, cfg)
			kp := dave.keyPackage(t)
			p1, err := bob.g.ProposeAdd(kp)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, p1, alice, carol)
			p2, err := carol.g.ProposeAdd(kp)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, carol, p2, alice, bob)
			p3, err := mls.NewMemberAddProposal(dave.bundle, alice.g.GroupID(), alice.g.Epoch())
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, dave, p3, all...)
			res = commit(t, alice, nil, all, dave)
			if len(res.Dropped) != 2 || len(res.Staged.Added) != 1 {
				t.Fatalf("dropped %d, added %d; want 2 duplicates dropped and dave added once", len(res.Dropped), len(res.Staged.Added))
			}
			for _, d := range res.Dropped {
				if d.Proposal.Type != mls.ProposalAdd {
					t.Fatalf("dropped a %v proposal", d.Proposal.Type)
				}
				typed(t, "reason for a dropped duplicate Add", d.Reason)
			}
			all = append(all, dave)
			checkAgree(t, all)
		})
	}
}

// TestRegressExternalProposalsNeedAuthorization (finding 6): with no
// Config.ExternalProposals policy, proposals of an external sender and
// new members' own Adds are refused (RFC 9420, Section 12.1.8:
// unauthorized external proposals are invalid), so whoever can post to the
// delivery service is not added by the next committer; a policy decides
// per proposal, and a receiver rejects a commit carrying a proposal its
// policy refused.
func TestRegressExternalProposalsNeedAuthorization(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 1206)
			cfg := detConfig("authz "+m.name, m.pub)
			ds, err := mls.GenerateSignatureKeyPair(fastSuite, cfg.Rand)
			if err != nil {
				t.Fatal(err)
			}
			ext, err := mls.ExternalSenderExtension(mls.ExternalSenderInfo{SignatureKey: ds.PublicKey(), Credential: mls.BasicCredential([]byte("ds"))})
			if err != nil {
				t.Fatal(err)
			}
			alice := newClient(t, "alice", fastSuite, cfg)
			// Bob lets the delivery service remove members, nothing else.
			bobCfg := *cfg
			bobCfg.ExternalProposals = mls.ExternalProposalFunc(func(_ []byte, p *mls.ProposalInfo) error {
				if p.Sender.Type == mls.SenderExternal && p.Type == mls.ProposalRemove {
					return nil
				}
				return errors.New("only removals by the delivery service")
			})
			bob := newClient(t, "bob", fastSuite, &bobCfg)
			carol := newClient(t, "carol", fastSuite, cfg)
			all := groupOf(t, alice, &mls.GroupOptions{Extensions: []mls.Extension{ext}}, []*client{bob, carol}, nil)

			mallory := newClient(t, "mallory", fastSuite, cfg)
			kp := mallory.keyPackage(t)
			byDS, err := mls.ExternalProposal(ds, 0, alice.g.GroupID(), alice.g.Epoch(), mls.AddProposal(kp), nil)
			if err != nil {
				t.Fatal(err)
			}
			byNew, err := mls.NewMemberAddProposal(mallory.bundle, alice.g.GroupID(), alice.g.Epoch())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range all {
				before := fingerprint(t, c.g)
				for _, msg := range [][]byte{byDS, byNew} {
					_, err := c.g.Process(msg)
					wantErr(t, c.name+" processing an unauthorized external Add", err, mls.ErrNotAuthorized)
					asValidation(t, c.name+" processing an unauthorized external Add", err, "12.1.8")
				}
				unchanged(t, "refused external proposals", c.g, before)
				if _, err := c.g.Encrypt([]byte("not held up"), nil); err != nil {
					t.Fatalf("%s: Encrypt after refusing external proposals: %v", c.name, err)
				}
			}
			res := commit(t, alice, nil, all)
			if len(res.Staged.Added) != 0 {
				t.Fatal("the next commit added the external sender's member")
			}

			// Bob's policy admits the delivery service's Remove of carol;
			// alice, with no policy, refuses it, and so does not commit
			// it; bob rejects a commit that includes a refused proposal.
			rm, err := mls.ExternalProposal(ds, 0, alice.g.GroupID(), alice.g.Epoch(), mls.RemoveProposal(carol.g.LeafIndex()), nil)
			if err != nil {
				t.Fatal(err)
			}
			process(t, bob, rm)
			_, err = alice.g.Process(rm)
			wantErr(t, "alice processing an external Remove", err, mls.ErrNotAuthorized)
			res = commit(t, bob, nil, []*client{})
			if len(res.Staged.Removed) != 1 {
				t.Fatalf("bob's commit removed %d, want carol", len(res.Staged.Removed))
			}
			before := fingerprint(t, alice.g)
			_, err = alice.g.Process(res.Commit)
			wantErr(t, "alice processing a commit of a proposal she refused", err, mls.ErrInvalidCommit)
			unchangedAfter(t, "refused commit", alice.g, before, !m.pub)
		})
	}
}

// TestRegressResumptionMembership (finding 9): a branch's members must be
// members of the original group (RFC 9420, Section 11.3) and a ReInit
// keeps the members (Section 11.2), both when the group is created and
// when a Welcome is processed; and the reinit PSK is that of the epoch
// after the ReInit commit.
func TestRegressResumptionMembership(t *testing.T) {
	seeded(t, 1209)
	cfg := detConfig("resume", false)
	all := threeParty(t, fastSuite, cfg)
	alice, bob, carol := all[0], all[1], all[2]
	commit(t, alice, nil, all) // epoch 2, so epoch 1's resumption PSK is kept too
	nextKP := func(c *client) (*client, *mls.KeyPackage) {
		n := newClient(t, c.name, fastSuite, cfg)
		n.sig, n.cred = c.sig, c.cred
		return n, n.keyPackage(t)
	}
	mallory := newClient(t, "mallory", fastSuite, cfg)
	km := mallory.keyPackage(t)

	// Branch: bob and an outsider.
	nb, kb := nextKP(bob)
	if _, _, err := alice.g.Branch([]byte("sub"), []*mls.KeyPackage{kb, km}, nil); err == nil {
		t.Fatal("Branch with a member who is not in the group succeeded")
	}
	w, err := mls.ResumeUnchecked(alice.g, []byte("sub"), false, alice.g.Epoch(), []*mls.KeyPackage{kb, km}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mls.JoinFromWelcome(cfg, w, nb.bundle, &mls.JoinOptions{Previous: bob.g})
	wantErr(t, "branch Welcome with a non-member", err, mls.ErrInvalidWelcome)
	// A genuine branch still works.
	nb, kb = nextKP(bob)
	ng, res, err := alice.g.Branch([]byte("sub"), []*mls.KeyPackage{kb}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ng.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if nb.g, err = mls.JoinFromWelcome(cfg, res.Welcome, nb.bundle, &mls.JoinOptions{Previous: bob.g}); err != nil {
		t.Fatal(err)
	}
	checkAgree(t, []*client{{name: "alice", g: ng}, nb})

	// ReInit.
	p, err := bob.g.ProposeReInit([]byte("group-2"), fastSuite, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, bob, p, all...)
	commit(t, alice, nil, all)
	nb, kb = nextKP(bob)
	// Carol replaced by mallory.
	if _, _, err := alice.g.ReInitGroup([]*mls.KeyPackage{kb, km}, nil); err == nil {
		t.Fatal("ReInitGroup with another membership succeeded")
	}
	w, err = mls.ResumeUnchecked(alice.g, nil, true, alice.g.Epoch(), []*mls.KeyPackage{kb, km}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mls.JoinFromWelcome(cfg, w, nb.bundle, &mls.JoinOptions{Previous: bob.g})
	wantErr(t, "ReInit Welcome with another membership", err, mls.ErrInvalidWelcome)
	// Carol left out.
	nb, kb = nextKP(bob)
	w, err = mls.ResumeUnchecked(alice.g, nil, true, alice.g.Epoch(), []*mls.KeyPackage{kb}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mls.JoinFromWelcome(cfg, w, nb.bundle, &mls.JoinOptions{Previous: bob.g})
	wantErr(t, "ReInit Welcome missing a member", err, mls.ErrInvalidWelcome)
	// The PSK of the epoch before the ReInit commit.
	nb, kb = nextKP(bob)
	_, kc := nextKP(carol)
	w, err = mls.ResumeUnchecked(alice.g, nil, true, alice.g.Epoch()-1, []*mls.KeyPackage{kb, kc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mls.JoinFromWelcome(cfg, w, nb.bundle, &mls.JoinOptions{Previous: bob.g})
	wantErr(t, "ReInit Welcome with the PSK of an earlier epoch", err, mls.ErrInvalidWelcome)
	asValidation(t, "ReInit Welcome with the PSK of an earlier epoch", err, "11.2")
	// The genuine ReInit.
	nb, kb = nextKP(bob)
	nc, kc := nextKP(carol)
	ng, res, err = alice.g.ReInitGroup([]*mls.KeyPackage{kb, kc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ng.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	group := []*client{{name: "alice", g: ng}}
	for _, pair := range [][2]*client{{nb, bob}, {nc, carol}} {
		if pair[0].g, err = mls.JoinFromWelcome(cfg, res.Welcome, pair[0].bundle, &mls.JoinOptions{Previous: pair[1].g}); err != nil {
			t.Fatalf("%s joining the reinitialised group: %v", pair[0].name, err)
		}
		group = append(group, pair[0])
	}
	checkAgree(t, group)
}

// TestRegressReInitGroupStaysClosed (finding 10): after the commit
// covering a ReInit, the old group accepts no more commits (RFC 9420,
// Section 11.2), so a member cannot reactivate it.
func TestRegressReInitGroupStaysClosed(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 1210)
			cfg := detConfig("closed "+m.name, m.pub)
			all := threeParty(t, fastSuite, cfg)
			alice, bob := all[0], all[1]
			p, err := bob.g.ProposeReInit([]byte("group-2"), fastSuite, nil)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, p, all...)
			commit(t, alice, nil, all)
			if _, err := alice.g.Commit(nil); !errors.Is(err, mls.ErrGroupInactive) {
				t.Fatalf("commit after ReInit: %v", err)
			}
			c, err := mls.CommitAfterReInit(bob.g)
			if err != nil {
				t.Fatal(err)
			}
			before := fingerprint(t, alice.g)
			_, err = alice.g.Process(c)
			wantErr(t, "a commit after the ReInit commit", err, mls.ErrGroupInactive)
			asValidation(t, "a commit after the ReInit commit", err, "11.2")
			unchangedAfter(t, "refused commit", alice.g, before, !m.pub)
			if alice.g.Active() {
				t.Fatal("the old group is active again")
			}
		})
	}
}
