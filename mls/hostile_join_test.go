package mls_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/mlskit/mlskit/mls"
)

// Hostile Welcome, GroupInfo (for an external join and for a PublicGroup)
// and KeyPackage messages, and hostile handshakes at a PublicGroup.

// flipPositions is every byte of an n-byte message, or every step-th for a
// large one (plus the first and last 64).
func flipPositions(n, max int) []int {
	step := 1
	if n > max {
		step = n/max + 1
	}
	var out []int
	for i := range n {
		if i%step == 0 || i < 64 || i >= n-64 {
			out = append(out, i)
		}
	}
	return out
}

// TestHostileWelcome: a Welcome truncated, bit-flipped, addressed to
// someone else, for a KeyPackage of another suite, with a forged GroupInfo
// signature, or used twice. Every failure must leave the KeyPackage's
// private keys usable, which the final, genuine join proves.
func TestHostileWelcome(t *testing.T) {
	seeded(t, 30)
	cfg := detConfig("hostile welcome", false)
	env := threeParty(t, fastSuite, cfg)
	alice := env[0]
	dave := newClient(t, "dave", fastSuite, cfg)
	kp := dave.keyPackage(t)
	forger, _ := mls.GenerateSignatureKeyPair(fastSuite, nil)
	var forged *mls.CommitResult
	var err error
	mls.WithSigner(alice.g, forger, func() {
		forged, err = alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	alice.g.DiscardPendingCommit()
	res, err := alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}})
	if err != nil {
		t.Fatal(err)
	}
	welcome := res.Welcome
	join := func(what string, w []byte, b *mls.KeyPackageBundle, want ...error) {
		t.Helper()
		noPanic(t, what, func() {
			g, err := mls.JoinFromWelcome(cfg, w, b, nil)
			if g != nil {
				t.Fatalf("%s: joined", what)
			}
			typed(t, what, err)
			if len(want) > 0 {
				wantErr(t, what, err, want...)
			}
		})
	}
	for _, n := range prefixes(len(welcome), 4096) {
		join(fmt.Sprintf("Welcome truncated to %d of %d", n, len(welcome)), welcome[:n], dave.bundle, mls.ErrMalformed)
	}
	pos := flipPositions(len(welcome), 700)
	for _, i := range pos {
		join(fmt.Sprintf("Welcome with byte %d of %d flipped", i, len(welcome)), flip(welcome, i), dave.bundle)
	}
	t.Logf("Welcome of %d bytes: %d prefixes, %d flips", len(welcome), len(welcome), len(pos))

	join("Welcome with a forged GroupInfo signature", forged.Welcome, dave.bundle, mls.ErrInvalidSignature)
	erin := newClient(t, "erin", fastSuite, cfg)
	erin.keyPackage(t)
	join("Welcome for another KeyPackage", welcome, erin.bundle, mls.ErrNoMatchingKeyPackage)
	frank := newClient(t, "frank", mls.P256_AES128GCM_SHA256_P256, cfg)
	frank.keyPackage(t)
	join("Welcome to a KeyPackage of another suite", welcome, frank.bundle, mls.ErrInvalidWelcome)
	join("a commit passed as a Welcome", res.Commit, dave.bundle, mls.ErrInvalidWelcome)
	gi, err := alice.g.GroupInfo(true, false)
	if err != nil {
		t.Fatal(err)
	}
	join("a GroupInfo passed as a Welcome", gi, dave.bundle, mls.ErrInvalidWelcome)

	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	deliver(t, alice, res.Commit, env...)
	if dave.g, err = mls.JoinFromWelcome(cfg, welcome, dave.bundle, nil); err != nil {
		t.Fatalf("genuine Welcome after the hostile ones: %v", err)
	}
	env = append(env, dave)
	checkAgree(t, env)
	// The KeyPackage is used up: the same Welcome again fails.
	join("Welcome used a second time", welcome, dave.bundle)
}

// TestHostileGroupInfo: a GroupInfo truncated, bit-flipped, forged, of
// another kind, or stale, given to ExternalJoin and NewPublicGroup. A stale
// GroupInfo gives a commit for an old epoch, which members refuse.
func TestHostileGroupInfo(t *testing.T) {
	seeded(t, 31)
	cfg := detConfig("hostile groupinfo", true)
	env := threeParty(t, fastSuite, cfg)
	alice := env[0]
	gi, err := alice.g.GroupInfo(true, true)
	if err != nil {
		t.Fatal(err)
	}
	dave := newClient(t, "dave", fastSuite, cfg)
	ext := func(what string, b []byte, want ...error) {
		t.Helper()
		noPanic(t, what, func() {
			r, err := mls.ExternalJoin(cfg, b, dave.cred, dave.sig, nil)
			if r != nil {
				t.Fatalf("%s: joined", what)
			}
			typed(t, what, err)
			if len(want) > 0 {
				wantErr(t, what, err, want...)
			}
		})
	}
	pub := func(what string, b []byte, want ...error) {
		t.Helper()
		noPanic(t, what, func() {
			pg, err := mls.NewPublicGroup(cfg, b, nil)
			if pg != nil {
				t.Fatalf("%s: accepted", what)
			}
			typed(t, what, err)
			if len(want) > 0 {
				wantErr(t, what, err, want...)
			}
		})
	}
	before := fingerprint(t, alice.g)
	for _, n := range prefixes(len(gi), 4096) {
		what := fmt.Sprintf("GroupInfo truncated to %d of %d", n, len(gi))
		ext("external join from "+what, gi[:n], mls.ErrMalformed)
		pub("public group from "+what, gi[:n], mls.ErrMalformed)
	}
	pos := flipPositions(len(gi), 600)
	for _, i := range pos {
		what := fmt.Sprintf("GroupInfo with byte %d of %d flipped", i, len(gi))
		ext("external join from "+what, flip(gi, i))
		pub("public group from "+what, flip(gi, i))
	}
	t.Logf("GroupInfo of %d bytes: %d prefixes, %d flips, each to both", len(gi), len(gi), len(pos))
	forger, _ := mls.GenerateSignatureKeyPair(fastSuite, nil)
	var forged []byte
	mls.WithSigner(alice.g, forger, func() { forged, err = alice.g.GroupInfo(true, true) })
	if err != nil {
		t.Fatal(err)
	}
	ext("external join from a forged GroupInfo", forged, mls.ErrInvalidSignature)
	pub("public group from a forged GroupInfo", forged, mls.ErrInvalidSignature)
	kp := dave.keyPackage(t).Bytes()
	ext("external join from a KeyPackage", kp, mls.ErrInvalidWelcome)
	pub("public group from a KeyPackage", kp, mls.ErrInvalidWelcome)
	noTree, _ := alice.g.GroupInfo(false, true)
	ext("external join from a GroupInfo without the tree", noTree, mls.ErrInvalidWelcome)
	pub("public group from a GroupInfo without the tree", noTree, mls.ErrInvalidWelcome)
	noPub, _ := alice.g.GroupInfo(true, false)
	ext("external join from a GroupInfo without external_pub", noPub, mls.ErrInvalidWelcome)
	unchanged(t, "hostile GroupInfos", alice.g, before)

	// A stale GroupInfo: the group has moved on.
	commit(t, env[1], nil, env)
	r, err := mls.ExternalJoin(cfg, gi, dave.cred, dave.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	before = fingerprint(t, alice.g)
	_, err = alice.g.Process(r.Commit)
	wantErr(t, "external commit from a stale GroupInfo", err, mls.ErrWrongEpoch)
	unchanged(t, "external commit from a stale GroupInfo", alice.g, before)
	pg, err := mls.NewPublicGroup(cfg, gi, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := alice.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pg.Process(res.Commit)
	wantErr(t, "public group behind the group", err, mls.ErrWrongEpoch)
	alice.g.DiscardPendingCommit()
	// The genuine, fresh GroupInfo works.
	gi, _ = alice.g.GroupInfo(true, true)
	if r, err = mls.ExternalJoin(cfg, gi, dave.cred, dave.sig, nil); err != nil {
		t.Fatal(err)
	}
	dave.g = r.Group
	deliver(t, dave, r.Commit, env...)
	checkAgree(t, append(env, dave))
}

// TestHostilePublicGroup: a PublicGroup (the delivery service's view) is
// fed the same hostile handshakes as a member. It cannot check membership
// or confirmation tags (RFC 9420, Section 6.2), so flips in those accepted
// only there; nothing may change its epoch, tree or members.
func TestHostilePublicGroup(t *testing.T) {
	seeded(t, 32)
	cfg := detConfig("hostile public group", true)
	env := threeParty(t, fastSuite, cfg)
	alice, bob, carol := env[0], env[1], env[2]
	gi, _ := alice.g.GroupInfo(true, false)
	pg, err := mls.NewPublicGroup(cfg, gi, nil)
	if err != nil {
		t.Fatal(err)
	}
	state := func() string {
		tree, _ := pg.RatchetTree()
		return fmt.Sprintf("%d %x %x %d", pg.Epoch(), pg.TreeHash(), tree, len(pg.Members()))
	}
	before := state()
	commitMsg, err := bob.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	proposal, err := carol.g.ProposeRemove(alice.g.LeafIndex())
	if err != nil {
		t.Fatal(err)
	}
	const tagLen = 1 + hashLen // opaque<V> with a 32-byte MAC
	for _, c := range []struct {
		name string
		msg  []byte
		tags int // trailing bytes an observer cannot check
	}{
		{"commit", commitMsg.Commit, 2 * tagLen}, // confirmation_tag, membership_tag
		{"proposal", proposal, tagLen},           // membership_tag
	} {
		for _, n := range prefixes(len(c.msg), 4096) {
			what := fmt.Sprintf("%s truncated to %d", c.name, n)
			noPanic(t, what, func() {
				_, err := pg.Process(c.msg[:n])
				wantErr(t, what, err, mls.ErrMalformed)
			})
		}
		accepted := 0
		for i := range c.msg {
			what := fmt.Sprintf("%s with byte %d of %d flipped", c.name, i, len(c.msg))
			noPanic(t, what, func() {
				r, err := pg.Process(flip(c.msg, i))
				if err == nil {
					if i < len(c.msg)-c.tags {
						t.Fatalf("%s: accepted", what)
					}
					accepted++
					if r.Proposal != nil {
						// Cached as the genuine proposal would be;
						// start again so the genuine one is new.
						pg, _ = mls.NewPublicGroup(cfg, gi, nil)
					}
					return
				}
				typed(t, what, err)
			})
			if s := state(); s != before {
				t.Fatalf("%s changed the public group", what)
			}
		}
		t.Logf("%s: %d flips, %d accepted (all in the tags an observer cannot check)", c.name, len(c.msg), accepted)
	}
	forger, _ := mls.GenerateSignatureKeyPair(fastSuite, nil)
	var forged []byte
	mls.WithSigner(carol.g, forger, func() { forged, err = carol.g.ProposeRemove(bob.g.LeafIndex()) })
	if err != nil {
		t.Fatal(err)
	}
	_, err = pg.Process(forged)
	wantErr(t, "forged proposal at the public group", err, mls.ErrInvalidSignature)
	app, _ := alice.g.Encrypt([]byte("x"), nil)
	_, err = pg.Process(app)
	wantErr(t, "PrivateMessage at the public group", err, mls.ErrUnsupported)
	if s := state(); s != before {
		t.Fatal("hostile messages changed the public group")
	}
	// It still follows the real commit.
	r, err := pg.Process(commitMsg.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Merge(r.Commit); err != nil {
		t.Fatal(err)
	}
	deliver(t, bob, commitMsg.Commit, alice, carol)
	if err := bob.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if pg.Epoch() != alice.g.Epoch() || !bytes.Equal(pg.TreeHash(), alice.g.TreeHash()) {
		t.Fatal("public group lost track")
	}
}

// TestHostileKeyPackage: a KeyPackage truncated, bit-flipped, re-signed by
// another key, of another kind; and KeyPackages that parse but may not be
// added: expired, of another suite, or the key of a member already there.
func TestHostileKeyPackage(t *testing.T) {
	seeded(t, 33)
	cfg := detConfig("hostile keypackage", false)
	env := threeParty(t, fastSuite, cfg)
	alice, bob := env[0], env[1]
	dave := newClient(t, "dave", fastSuite, cfg)
	kp := dave.keyPackage(t)
	raw := kp.Bytes()
	parse := func(what string, b []byte, want ...error) {
		t.Helper()
		noPanic(t, what, func() {
			k, err := mls.ParseKeyPackage(b)
			if k != nil {
				t.Fatalf("%s: parsed", what)
			}
			typed(t, what, err)
			wantErr(t, what, err, want...)
		})
	}
	for n := range len(raw) {
		parse(fmt.Sprintf("KeyPackage truncated to %d of %d", n, len(raw)), raw[:n], mls.ErrMalformed)
	}
	for i := range raw {
		parse(fmt.Sprintf("KeyPackage with byte %d of %d flipped", i, len(raw)), flip(raw, i))
	}
	forger, _ := mls.GenerateSignatureKeyPair(fastSuite, nil)
	forged, err := mls.ResignKeyPackage(kp, forger)
	if err != nil {
		t.Fatal(err)
	}
	parse("KeyPackage signed by another key", forged, mls.ErrInvalidKeyPackage)
	gi, _ := alice.g.GroupInfo(true, false)
	parse("GroupInfo passed as a KeyPackage", gi, mls.ErrInvalidKeyPackage)

	before := fingerprint(t, alice.g)
	add := func(what string, k *mls.KeyPackage, want error) {
		t.Helper()
		_, err := alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(k)}})
		wantErr(t, what, err, want)
		_, err = alice.g.ProposeAdd(k)
		wantErr(t, "proposing "+what, err, want)
		unchanged(t, what, alice.g, before)
	}
	old := &mls.Config{Rand: seededRand("old"), Now: func() time.Time { return fixedNow().Add(-200 * 24 * time.Hour) }}
	expired, err := mls.NewKeyPackage(old, dave.cred, dave.sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	add("adding an expired KeyPackage", expired.KeyPackage, mls.ErrInvalidKeyPackage)
	p256 := newClient(t, "p256", mls.P256_AES128GCM_SHA256_P256, cfg)
	add("adding a KeyPackage of another suite", p256.keyPackage(t), mls.ErrInvalidKeyPackage)
	again := &client{name: "bob again", cfg: cfg, sig: bob.sig, cred: bob.cred}
	_, err = alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(again.keyPackage(t))}})
	typed(t, "adding a member's signature key again", err)
	unchanged(t, "adding a member's signature key again", alice.g, before)
	_, err = alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp), mls.AddProposal(kp)}})
	typed(t, "adding the same KeyPackage twice", err)
	unchanged(t, "adding the same KeyPackage twice", alice.g, before)
	commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(kp)}}, env, dave)
	checkAgree(t, append(env, dave))
}
