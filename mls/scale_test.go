package mls_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mlskit/mlskit/mls"
)

// TestScale1000 builds a 1,000-member group in ONE commit (the creator adds
// 999 KeyPackages), then drives it through updates and removes. Only a few
// members hold real Group objects (spread over the tree so their paths
// cross at every level); the others exist only as KeyPackages in the tree,
// which is all the real members need (RFC 9420, Section 12.4.2: a receiver
// decrypts one path secret, wherever the committer is).
//
// With -short the group has 100 members.
func TestScale1000(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	seeded(t, 1000)
	cfg := detConfig("scale", false)
	start := time.Now()
	phase := start
	lap := func(what string) {
		t.Logf("%-46s %8v", what, time.Since(phase).Round(time.Millisecond))
		phase = time.Now()
	}

	creator := newGroupClient(t, "m0", scaleSuite, cfg, nil)
	// Real members: the creator at leaf 0 and these leaves, spread so
	// that commits from them cross at the root and deep in the tree.
	a, b, z := 1, n/2, n-1
	clients := scaleKeyPackages(t, n)
	clients[0] = creator
	adds := make([]*mls.Proposal, 0, n-1)
	for _, c := range clients[1:] {
		adds = append(adds, mls.AddProposal(c.bundle.KeyPackage))
	}
	lap(fmt.Sprintf("%d KeyPackages (2 goroutines)", n-1))

	res, err := creator.g.Commit(&mls.CommitOptions{Proposals: adds})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Staged.Added) != n-1 {
		t.Fatalf("commit adds %d members, want %d", len(res.Staged.Added), n-1)
	}
	for i, a := range res.Staged.Added {
		if int(a.Leaf) != i+1 {
			t.Fatalf("KeyPackage %d added at leaf %d", i+1, a.Leaf)
		}
	}
	if err := creator.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	lap(fmt.Sprintf("one commit adding %d (commit %d B, Welcome %d B)", n-1, len(res.Commit), len(res.Welcome)))

	// Each joiner validates the whole tree (every leaf signature, parent
	// hashes); the joins are independent, so run them side by side.
	real := []*client{creator, clients[a], clients[b], clients[z]}
	errs := make(chan error, 3)
	for _, c := range real[1:] {
		go func() {
			g, err := mls.JoinFromWelcome(c.cfg, res.Welcome, c.bundle, nil)
			if err != nil {
				errs <- fmt.Errorf("%s join: %w", c.name, err)
				return
			}
			c.g = g
			errs <- nil
		}()
	}
	for range real[1:] {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []int{a, b, z} {
		if got := int(clients[l].g.LeafIndex()); got != l {
			t.Fatalf("%s joined at leaf %d", clients[l].name, got)
		}
	}
	lap("3 joins from the Welcome (in parallel)")
	if got := len(creator.g.Members()); got != n {
		t.Fatalf("%d members, want %d", got, n)
	}
	checkAgree(t, real)
	lap("agreement")

	// Updates: an empty commit with a path from the middle of the tree
	// (its copath reaches the other half, all unmerged leaves), then an
	// Update proposal committed by another member.
	commit(t, clients[b], nil, real)
	lap("path-only commit by leaf n/2")
	up, err := clients[a].g.ProposeUpdate(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, clients[a], up, real...)
	sc := commit(t, clients[z], nil, real).Staged
	if len(sc.Updated) != 1 || int(sc.Updated[0]) != a {
		t.Fatalf("commit applied updates %v, want [%d]", sc.Updated, a)
	}
	lap("Update proposal + commit")
	checkAgree(t, real)

	// Removes: a tenth of the members in one commit, then a real member
	// removed by proposal and commit.
	var rms []*mls.Proposal
	removed := 0
	for l := 3; l < n-1 && removed < n/10; l += 7 {
		if l != b {
			rms = append(rms, mls.RemoveProposal(mls.LeafIndex(l)))
			removed++
		}
	}
	sc = commit(t, creator, &mls.CommitOptions{Proposals: rms}, real).Staged
	if len(sc.Removed) != removed {
		t.Fatalf("commit removed %d, want %d", len(sc.Removed), removed)
	}
	lap(fmt.Sprintf("one commit removing %d", removed))
	victim := clients[z]
	rm, err := creator.g.ProposeRemove(victim.g.LeafIndex())
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, creator, rm, real...)
	cres, err := clients[a].g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range real {
		if c == clients[a] {
			continue
		}
		r, err := c.g.Process(cres.Commit)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.Commit.SelfRemoved != (c == victim) {
			t.Fatalf("%s: SelfRemoved=%v", c.name, r.Commit.SelfRemoved)
		}
		if err := c.g.MergeStagedCommit(r.Commit); err != nil {
			t.Fatal(err)
		}
	}
	if err := clients[a].g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	removed++
	stay := real[:3]
	checkAgree(t, stay)
	lap("Remove proposal + commit + agreement")
	if _, err := victim.g.Encrypt([]byte("x"), nil); !errors.Is(err, mls.ErrRemoved) {
		t.Fatalf("removed member encrypts: %v", err)
	}
	if got, want := len(creator.g.Members()), n-removed; got != want {
		t.Fatalf("%d members at the end, want %d", got, want)
	}
	for _, c := range stay {
		if c.g.Epoch() != 5 || !bytes.Equal(c.g.TreeHash(), creator.g.TreeHash()) {
			t.Fatalf("%s at epoch %d, want 5 with the creator's tree", c.name, c.g.Epoch())
		}
	}
	t.Logf("%d members, epoch %d, total %v", n, creator.g.Epoch(), time.Since(start).Round(time.Millisecond))
}

// scaleKeyPackages makes clients 1..n-1 with a KeyPackage each, on two
// goroutines. Every client draws its keys from its own seeded stream (its
// signing key too, not crypto/rand), so the result does not depend on the
// scheduling. Index 0 is left nil.
func scaleKeyPackages(t *testing.T, n int) []*client {
	clients := make([]*client, n)
	const workers = 2
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := 1 + w; i < n; i += workers {
				name := fmt.Sprintf("m%d", i)
				cfg := detConfig(name, false)
				sig, err := mls.GenerateSignatureKeyPair(scaleSuite, cfg.Rand)
				if err != nil {
					errs <- err
					return
				}
				c := &client{name: name, cfg: cfg, sig: sig, cred: mls.BasicCredential([]byte(name))}
				if c.bundle, err = mls.NewKeyPackage(cfg, c.cred, sig, nil); err != nil {
					errs <- err
					return
				}
				clients[i] = c
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return clients
}

// scaleSuite is P-256, whose field arithmetic is assembly: under the race
// detector the X25519/Ed25519 suite, partly pure Go, is about three times
// slower here (16 s of CPU for this test against 5 s), and the test must
// stay within its budget with -race on two cores.
const scaleSuite = mls.P256_AES128GCM_SHA256_P256
