package mls_test

import (
	"errors"
	"testing"

	"github.com/mlskit/mlskit/mls"
)

// TestRegressResumptionPSKCutsOffJoiners: a member proposes (correctly
// signed) a resumption PSK of an epoch before dave joined. Every member
// that was in that epoch holds it, so the proposal is valid, but a commit
// injecting it is one dave cannot process (RFC 9420, Section 8.6): through
// an honest member's default commit the proposer would cut dave off. The
// default commit leaves it out (Dropped, ErrMissingPSK) and dave goes on.
// The same proposal is included when every member held that epoch (the
// control), and left out of a commit that adds a member, who holds no
// resumption PSK of the group. Both hold across a save and load, and for a
// member that joined later itself (its own join epoch bounds what it
// holds). Found by the stateful fuzzer (d2d992366fd3d172).
func TestRegressResumptionPSKCutsOffJoiners(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 88)
			cfg := detConfig("cutoff "+m.name, m.pub)
			all := threeParty(t, fastSuite, cfg) // bob and carol joined in epoch 1
			alice, bob, carol := all[0], all[1], all[2]
			commit(t, alice, nil, all) // epoch 2
			dave := newClient(t, "dave", fastSuite, cfg)
			commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(dave.keyPackage(t))}}, all, dave) // epoch 3
			all = append(all, dave)
			for _, c := range all {
				if got := mls.LastJoin(c.g); got != 3 {
					t.Fatalf("%s: last join %d, want 3", c.name, got)
				}
			}

			// Epoch 2: before dave. Carol's default commit leaves it out.
			p, err := bob.g.ProposeResumptionPSK(2)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, p, all...)
			reloaded := saveLoad(t, carol)
			res, err := reloaded.Commit(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Dropped) != 1 || !errors.Is(res.Dropped[0].Reason, mls.ErrMissingPSK) || res.Dropped[0].Proposal.PSK == nil {
				t.Fatalf("dropped %+v, want the resumption PSK with ErrMissingPSK", res.Dropped)
			}
			if len(res.Staged.PSKs) != 0 {
				t.Fatalf("the commit injects %+v", res.Staged.PSKs)
			}
			reloaded.DiscardPendingCommit()
			sc := commit(t, carol, nil, all).Staged // epoch 4: dave processes it
			if len(sc.PSKs) != 0 {
				t.Fatalf("the commit injects %+v", sc.PSKs)
			}
			checkAgree(t, all)

			// Control: epoch 3, which all four were in, is included.
			p, err = bob.g.ProposeResumptionPSK(3)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, p, all...)
			sc = commit(t, dave, nil, all).Staged // epoch 5, by the newest member
			if len(sc.PSKs) != 1 || sc.PSKs[0].Epoch != 3 {
				t.Fatalf("control: the commit injects %+v, want the PSK of epoch 3", sc.PSKs)
			}
			checkAgree(t, all)

			// A commit that adds erin leaves out every resumption PSK of the
			// group, the current epoch's too.
			p, err = bob.g.ProposeResumptionPSK(5)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, bob, p, all...)
			erin := newClient(t, "erin", fastSuite, cfg)
			res = commit(t, alice, &mls.CommitOptions{Proposals: []*mls.Proposal{mls.AddProposal(erin.keyPackage(t))}}, all, erin)
			if len(res.Dropped) != 1 || !errors.Is(res.Dropped[0].Reason, mls.ErrMissingPSK) || len(res.Staged.PSKs) != 0 {
				t.Fatalf("add commit: dropped %+v, PSKs %+v", res.Dropped, res.Staged.PSKs)
			}
			all = append(all, erin)
			checkAgree(t, all)

			// The committer's own explicit choice is not second-guessed.
			res, err = alice.g.Commit(&mls.CommitOptions{Proposals: []*mls.Proposal{mls.ResumptionPSKProposal(alice.g.GroupID(), 5)}})
			if err != nil {
				t.Fatalf("explicit resumption PSK: %v", err)
			}
			if len(res.Staged.PSKs) != 1 {
				t.Fatalf("explicit resumption PSK: the commit names %d PSKs, want 1", len(res.Staged.PSKs))
			}
			alice.g.DiscardPendingCommit()
		})
	}
}

// saveLoad returns c's group as a later run would load it.
func saveLoad(t *testing.T, c *client) *mls.Group {
	t.Helper()
	data, err := c.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	g, err := mls.UnmarshalGroup(c.cfg, data)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
