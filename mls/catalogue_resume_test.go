package mls_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/wire"
	"github.com/mlskit/mlskit/mls"
	"github.com/mlskit/mlskit/storage/memory"
)

// Catalogue cases for the rules of issue 12's findings 2, 9 and 10 and for
// the unmerged_leaves rules of Sections 7.9.2 and 12.4.3.1. The ReInit and
// store cases cannot use the shared runners (after a ReInit commit the
// genuine next message is the new group's Welcome, not a commit; a
// group_id clash needs a store), so they bring their own run, which makes
// the same three checks: typed error, fingerprint unchanged, genuine next
// message accepted.

// checkSection fails unless err is a *ValidationError of section (when
// section is set): the case's rule, not another, refused the message.
func checkSection(t testing.TB, what string, err error, section string) {
	t.Helper()
	if section == "" {
		return
	}
	// A tree check reports the ratchet tree's own *ValidationError,
	// wrapped in the public class.
	var ve *mls.ValidationError
	var te *ratchettree.ValidationError
	switch {
	case errors.As(err, &ve) && ve.Section == section:
	case errors.As(err, &te) && te.Section == section:
	default:
		t.Fatalf("%s: %v, want a *ValidationError of Section %s", what, err, section)
	}
}

// follow has the PublicGroup follow a commit.
func (e *advEnv) follow(t testing.TB, res *mls.CommitResult) {
	t.Helper()
	rc, err := e.pg.Process(res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.pg.Merge(rc.Commit); err != nil {
		t.Fatal(err)
	}
}

// reinitRules: Section 11.2 and the group_id rule of 12.4.3.1.
func reinitRules() []rule {
	welcomeRecv := "joiner (" + notPublicWelcome + ")"
	return []rule{
		{name: "12.4.3.1/group-id-exists", section: "12.4.3.1", text: "a Welcome's group_id is not one of the client's groups (the stored group is untouched)",
			want: mls.ErrGroupExists, kind: welcome, public: notPublicWelcome, receivers: "joiner with a store (" + notPublicWelcome + ")",
			wantSection: "12.4.3.1", run: runGroupIDExists},
		{name: "11.2/reinit-membership-changed", section: "11.2, 12.4.3.1", text: "a reinit Welcome keeps the members (none replaced)",
			want: mls.ErrInvalidWelcome, kind: welcome, public: notPublicWelcome, receivers: welcomeRecv, wantSection: "11",
			run: reinitWelcomeCase(func(e *advEnv, kb, kc, km *mls.KeyPackage) ([]*mls.KeyPackage, uint64) {
				return []*mls.KeyPackage{kb, km}, 0 // carol replaced by mallory
			})},
		{name: "11.2/reinit-member-missing", section: "11.2, 12.4.3.1", text: "a reinit Welcome keeps the members (none left out)",
			want: mls.ErrInvalidWelcome, kind: welcome, public: notPublicWelcome, receivers: welcomeRecv, wantSection: "11.2",
			run: reinitWelcomeCase(func(e *advEnv, kb, kc, km *mls.KeyPackage) ([]*mls.KeyPackage, uint64) {
				return []*mls.KeyPackage{kb}, 0 // carol left out
			})},
		{name: "11.2/reinit-psk-epoch", section: "11.2, 12.4.3.1", text: "a reinit PSK is that of the epoch the ReInit commit started",
			want: mls.ErrInvalidWelcome, kind: welcome, public: notPublicWelcome, receivers: welcomeRecv, wantSection: "11.2",
			run: reinitWelcomeCase(func(e *advEnv, kb, kc, km *mls.KeyPackage) ([]*mls.KeyPackage, uint64) {
				return []*mls.KeyPackage{kb, kc}, e.alice.g.Epoch() - 1 // the epoch before the ReInit commit
			})},
		{name: "11.2/commit-after-reinit", section: "11.2", text: "no commit is accepted after the commit covering a ReInit",
			want: mls.ErrGroupInactive, wantSection: "11.2", receivers: "member + PublicGroup", run: runCommitAfterReInit},
	}
}

// unmergedRules: Sections 7.9.2 and 12.4.3.1 on unmerged_leaves, in a
// Welcome's tree and in a GroupInfo's. In the catalogue group the root
// and node 1 are alice's, node 5 is blank; a joiner at the blank leaf 2 is
// unmerged at the root, whose parent hash node 1 carries: the parent hash
// covers the tree under node 5 without the root's unmerged leaves (RFC
// 9420, Section 7.9.2), so the list must be exactly the leaves added since.
func unmergedRules() []rule {
	setRoot := func(t *testing.T, um ...uint32) func(n wire.RatchetTree) wire.RatchetTree {
		return func(n wire.RatchetTree) wire.RatchetTree {
			if n[3] == nil || n[1] == nil || n[5] != nil || !slices.Equal(n[3].ParentNode.UnmergedLeaves, []uint32{blankLeaf}) {
				t.Fatal("tree not shaped as expected")
			}
			p := *n[3].ParentNode
			p.UnmergedLeaves = um
			n[3] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &p}
			return n
		}
	}
	rootWelcome := func(um ...uint32) func(t *testing.T, e *advEnv) ([]byte, *mls.JoinOptions) {
		return welcomeOf(func(t *testing.T, e *advEnv) *mls.WelcomeForge { return &mls.WelcomeForge{Tree: setRoot(t, um...)} })
	}
	return []rule{
		{name: "7.9.2/unmerged-leaf-missing", section: "7.9, 7.9.2, 12.4.3.1", text: "a parent's unmerged_leaves lists every leaf added below it since it was set",
			want: mls.ErrInvalidTree, wantSection: "7.9.2", kind: welcome, public: notPublicWelcome, join: rootWelcome()},
		{name: "7.9.2/unmerged-leaf-extra", section: "7.9, 7.9.2, 12.4.3.1", text: "a parent's unmerged_leaves lists no leaf merged below it (one with the parent's key)",
			want: mls.ErrInvalidTree, wantSection: "7.9.2", kind: welcome, public: notPublicWelcome, join: rootWelcome(blankLeaf, 3)},
		// bob's leaf is merged at node 1 and the root (alice's paths
		// reached him); listing him at the root alone breaks the rule
		// that the nodes in between list him too.
		{name: "12.4.3.1/unmerged-leaf-intermediate", section: "12.4.3.1, 7.9", text: "every non-blank node between an unmerged leaf and the parent listing it lists it too",
			want: mls.ErrInvalidTree, wantSection: "12.4.3.1", kind: welcome, public: notPublicWelcome, join: rootWelcome(1, blankLeaf)},
		// In a GroupInfo: erin, added at leaf 2 by a commit without a
		// path, is unmerged at the root; the root's list loses her.
		{name: "7.9.2/group-info-unmerged-leaf-missing", section: "7.9, 7.9.2, 12.4.3.1", text: "a GroupInfo's tree: a parent's unmerged_leaves lists every leaf added below it since it was set",
			want: mls.ErrInvalidTree, wantSection: "7.9.2", kind: groupInfo, env: withUnmergedErin, make: groupInfoTreeEdited(func(t *testing.T) func(wire.RatchetTree) {
				return func(n wire.RatchetTree) { setRoot(t)(n) }
			})},
		// The same tree with erin's LeafNode signature spoiled: no parent
		// hash covers her leaf, and the tree hash is the edited tree's, so
		// the signature is the only thing wrong (the joiner verifies the
		// leaves while it decodes the tree, ratchettree.DecodeValidated).
		{name: "12.4.3.1/group-info-leaf-valid", section: "12.4.3.1, 7.3", text: "a GroupInfo's tree: every leaf is a valid LeafNode (signature)",
			want: mls.ErrInvalidSignature, wantSection: "7.3", kind: groupInfo, env: withUnmergedErin, make: groupInfoTreeEdited(func(t *testing.T) func(wire.RatchetTree) {
				return func(n wire.RatchetTree) {
					l := *n[4].LeafNode
					l.Signature = append([]byte{}, l.Signature...)
					l.Signature[0] ^= 1
					n[4] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: &l}
				}
			})},
	}
}

// withUnmergedErin is the catalogue group after alice adds erin at leaf 2
// by a commit without a path: erin is unmerged at the root.
func withUnmergedErin(t testing.TB) *advEnv {
	e := newAdvEnv(t, "unmerged group info")
	erin := newClient(t, "erin", fastSuite, e.cfg)
	e.follow(t, commit(t, e.alice, &mls.CommitOptions{OmitPath: true,
		Proposals: []*mls.Proposal{mls.AddProposal(erin.keyPackage(t))}}, e.members))
	return e
}

// groupInfoTreeEdited makes alice's GroupInfo with its tree edited by
// edit(t) and the tree hash set to the edited tree's, signed by alice.
func groupInfoTreeEdited(edit func(t *testing.T) func(wire.RatchetTree)) func(t *testing.T, e *advEnv) []byte {
	return func(t *testing.T, e *advEnv) []byte {
		b, err := mls.ForgeGroupInfo(e.alice.g, nil, func(gi *wire.GroupInfo) {
			editGroupInfoTree(t, e.alice.g, gi, edit(t))
		})
		return must(t, b, err)
	}
}

// editGroupInfoTree edits the ratchet_tree extension of gi and sets the
// tree hash to the edited tree's, so only the edit is wrong.
func editGroupInfoTree(t *testing.T, g *mls.Group, gi *wire.GroupInfo, edit func(wire.RatchetTree)) {
	t.Helper()
	for i, x := range gi.Extensions {
		if x.ExtensionType != wire.ExtensionTypeRatchetTree {
			continue
		}
		tree, err := wire.Decode[wire.RatchetTree](x.ExtensionData)
		if err != nil {
			t.Fatal(err)
		}
		edit(*tree)
		data, hash, err := mls.EncodeRatchetTree(g, *tree)
		if err != nil {
			t.Fatal(err)
		}
		gi.Extensions[i].ExtensionData = data
		gi.GroupContext.TreeHash = hash
		return
	}
	t.Fatal("GroupInfo without a ratchet tree")
}

// runGroupIDExists: dave is in the group, stored; bob, who knows the
// group_id and holds dave's next KeyPackage, Welcomes him into a fresh
// group with that id. Refused with ErrGroupExists; the stored group and
// the KeyPackage are as before; the group goes on.
func runGroupIDExists(t *testing.T, e *advEnv, r rule) {
	ctx := context.Background()
	st := memory.New()
	if err := mls.SaveKeyPackage(ctx, st, e.dave.bundle); err != nil {
		t.Fatal(err)
	}
	res, err := e.alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(e.daveKP)}})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, e.alice, res.Commit, e.members...)
	if err := e.alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if e.dave.g, err = mls.JoinFromStore(ctx, e.cfg, st, res.Welcome, nil); err != nil {
		t.Fatal(err)
	}
	id := e.alice.g.GroupID()
	stored := func() string {
		g, err := mls.LoadGroup(ctx, e.cfg, st, id)
		if err != nil {
			t.Fatal(err)
		}
		return fingerprint(t, g)
	}
	before := stored()
	kp2 := e.dave.keyPackage(t)
	if err := mls.SaveKeyPackage(ctx, st, e.dave.bundle); err != nil {
		t.Fatal(err)
	}
	evil, err := mls.NewGroup(e.cfg, id, e.bob.cred, e.bob.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	ew, err := evil.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp2)}})
	if err != nil {
		t.Fatal(err)
	}
	noPanic(t, "joiner", func() {
		g, err := mls.JoinFromStore(ctx, e.cfg, st, ew.Welcome, nil)
		if g != nil {
			t.Fatal("joined")
		}
		wantErr(t, "joiner", err, r.want)
		typed(t, "joiner", err)
		checkSection(t, "joiner", err, r.wantSection)
		t.Logf("joiner: %v", err)
	})
	if after := stored(); after != before {
		t.Fatalf("the stored group changed:\n%s", diffLines(before, after))
	}
	if _, err := mls.LoadKeyPackage(ctx, st, kp2.Ref()); err != nil {
		t.Fatalf("the refused Welcome consumed the KeyPackage: %v", err)
	}
	// The genuine next message: an honest commit, which dave follows
	// from his stored group.
	if e.dave.g, err = mls.LoadGroup(ctx, e.cfg, st, id); err != nil {
		t.Fatal(err)
	}
	all := append(e.members, e.dave)
	commit(t, e.carol, nil, all)
	checkAgree(t, all)
}

// reinitOf has bob propose a ReInit and alice commit it; every member and
// the PublicGroup follow.
func reinitOf(t *testing.T, e *advEnv) {
	t.Helper()
	p, err := e.bob.g.ProposeReInit([]byte("reinitialised"), fastSuite, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, e.bob, p, e.members...)
	if _, err := e.pg.Process(p); err != nil {
		t.Fatal(err)
	}
	res := commit(t, e.alice, nil, e.members)
	rc, err := e.pg.Process(res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.pg.Merge(rc.Commit); err != nil {
		t.Fatal(err)
	}
	if e.alice.g.Active() || e.pg.Epoch() != e.alice.g.Epoch() {
		t.Fatal("the ReInit commit did not close the group")
	}
}

// successor is a fresh client with c's identity and signature key, as c
// would join the reinitialised group, and its KeyPackage.
func successor(t *testing.T, e *advEnv, c *client) (*client, *mls.KeyPackage) {
	n := &client{name: c.name + "'", cfg: e.cfg, sig: c.sig, cred: c.cred}
	return n, n.keyPackage(t)
}

// reinitWelcomeCase: after a ReInit commit, alice sends bob's successor a
// Welcome into the new group with the KeyPackages and the epoch of the
// reinit PSK that pick chooses (epoch 0: the right one), skipping her own
// checks. Bob's successor refuses it, bob's old group is untouched, and
// the genuine ReInit Welcome to the same KeyPackage is accepted.
func reinitWelcomeCase(pick func(e *advEnv, kb, kc, km *mls.KeyPackage) ([]*mls.KeyPackage, uint64)) func(t *testing.T, e *advEnv, r rule) {
	return func(t *testing.T, e *advEnv, r rule) {
		reinitOf(t, e)
		nb, kb := successor(t, e, e.bob)
		nc, kc := successor(t, e, e.carol)
		mallory := newClient(t, "mallory", fastSuite, e.cfg)
		kps, epoch := pick(e, kb, kc, mallory.keyPackage(t))
		if epoch == 0 {
			epoch = e.alice.g.Epoch()
		}
		w, err := mls.ResumeUnchecked(e.alice.g, nil, true, epoch, kps, nil)
		if err != nil {
			t.Fatal(err)
		}
		before := fingerprint(t, e.bob.g)
		noPanic(t, "joiner", func() {
			g, err := mls.JoinFromWelcome(e.cfg, w, nb.bundle, &mls.JoinOptions{Previous: e.bob.g})
			if g != nil {
				t.Fatal("joined")
			}
			wantErr(t, "joiner", err, r.want)
			typed(t, "joiner", err)
			checkSection(t, "joiner", err, r.wantSection)
			t.Logf("joiner: %v", err)
		})
		unchanged(t, "bob's old group", e.bob.g, before)
		// The genuine ReInit Welcome, to the same KeyPackages.
		ng, res, err := e.alice.g.ReInitGroup([]*mls.KeyPackage{kb, kc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ng.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		group := []*client{{name: "alice'", g: ng}}
		for _, p := range [][2]*client{{nb, e.bob}, {nc, e.carol}} {
			if p[0].g, err = mls.JoinFromWelcome(e.cfg, res.Welcome, p[0].bundle, &mls.JoinOptions{Previous: p[1].g}); err != nil {
				t.Fatalf("%s joining the reinitialised group: %v", p[0].name, err)
			}
			group = append(group, p[0])
		}
		checkAgree(t, group)
	}
}

// runCommitAfterReInit: after the ReInit commit, bob commits in the old
// group as if it were still open. Alice and the PublicGroup refuse it and
// stay as they were; the genuine next message, the new group's Welcome,
// is accepted.
func runCommitAfterReInit(t *testing.T, e *advEnv, r rule) {
	reinitOf(t, e)
	msg, err := mls.CommitAfterReInit(e.bob.g)
	if err != nil {
		t.Fatal(err)
	}
	before, pgBefore := fingerprint(t, e.alice.g), mls.PublicFingerprint(e.pg)
	noPanic(t, "member", func() {
		_, err := e.alice.g.Process(msg)
		wantErr(t, "member", err, r.want)
		typed(t, "member", err)
		checkSection(t, "member", err, r.wantSection)
		t.Logf("member: %v", err)
	})
	unchanged(t, "member", e.alice.g, before)
	noPanic(t, "public group", func() {
		_, err := e.pg.Process(msg)
		wantErr(t, "public group", err, r.want)
		typed(t, "public group", err)
		checkSection(t, "public group", err, r.wantSection)
	})
	if after := mls.PublicFingerprint(e.pg); after != pgBefore {
		t.Fatalf("public group changed:\n%s", diffLines(pgBefore, after))
	}
	nb, kb := successor(t, e, e.bob)
	nc, kc := successor(t, e, e.carol)
	ng, res, err := e.alice.g.ReInitGroup([]*mls.KeyPackage{kb, kc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ng.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	group := []*client{{name: "alice'", g: ng}}
	for _, p := range [][2]*client{{nb, e.bob}, {nc, e.carol}} {
		if p[0].g, err = mls.JoinFromWelcome(e.cfg, res.Welcome, p[0].bundle, &mls.JoinOptions{Previous: p[1].g}); err != nil {
			t.Fatalf("%s joining the reinitialised group: %v", p[0].name, err)
		}
		group = append(group, p[0])
	}
	checkAgree(t, group)
}
