package mls_test

import (
	"runtime"
	"testing"

	"github.com/mlskit/mlskit/mls"
)

// TestStateAfterCommitsStaysCompact: a member that has processed a commit
// from every other member holds about what a member that just joined the
// same tree holds, not the commits themselves. A tree used to keep each
// LeafNode and path key as decoded, pointing into the commit it came in,
// so each member's latest commit stayed allocated whole (2 KB each in the
// full tree here, 80 KB for a first commit in a sparse 1,000-member tree):
// here 3.1 KB per member of state against 1.4 KB for a joiner, and 1.8 KB
// since the tree keeps copies.
func TestStateAfterCommitsStaysCompact(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 256-member group and has every member commit")
	}
	const n = 256
	g, err := buildSparseBenchGroup(n)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.fillPaths(); err != nil { // every member commits once, each kept member processes it all
		t.Fatal(err)
	}
	kb, welcome := g.joinerWelcome(t)
	joiner, err := mls.JoinFromWelcome(g.cfg, welcome, kb, nil)
	if err != nil {
		t.Fatal(err)
	}
	j := held(&joiner) / n
	c := held(&g.creator) / n
	runtime.KeepAlive(g) // the rest of the fixture stays, or the drop would count it
	t.Logf("state per member: %d B joined from a Welcome, %d B after processing a commit from every member", j, c)
	if c > 2*j {
		t.Errorf("a member that processed the group's commits holds %d B per member, over twice a joiner's %d B: received commits are being kept", c, j)
	}
}

// held is the heap that *p keeps alive, measured by dropping it. Two
// collections each time: sync.Pool contents survive one. The caller keeps
// everything else it holds alive past the call (runtime.KeepAlive).
func held[T any](p **T) int64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m0)
	*p = nil
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	return int64(m0.HeapAlloc) - int64(m1.HeapAlloc)
}

// TestProcessedCommitNotKept: a group keeps nothing of a commit it has
// processed and merged. The commit below carries 1 MiB of
// authenticated_data, an Add, a GroupContextExtensions proposal and a
// path, whose new leaves, keys and extensions the group keeps: kept as
// decoded, they would keep the whole decoded message, and the 1 MiB with
// it. (The GroupContext's extensions did, until they were copied.)
func TestProcessedCommitNotKept(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			seeded(t, 94)
			cfg := detConfig("commit kept "+m.name, m.pub)
			all := threeParty(t, fastSuite, cfg)
			alice, bob := all[0], all[1]
			gi, err := alice.g.GroupInfo(true, false)
			if err != nil {
				t.Fatal(err)
			}
			pg, err := mls.NewPublicGroup(cfg, gi, nil) // as mlsd follows a group
			if err != nil {
				t.Fatal(err)
			}
			dave := newClient(t, "dave", fastSuite, cfg)
			props := []*mls.Proposal{mls.GroupContextExtensionsProposal([]mls.Extension{requireExt(t)}), mls.AddProposal(dave.keyPackage(t))}
			res := commit(t, alice, &mls.CommitOptions{Proposals: props, AuthenticatedData: make([]byte, 1<<20)}, all, dave)
			all = append(all, dave)
			checkAgree(t, all)
			if m.pub {
				r, err := pg.Process(res.Commit)
				if err != nil {
					t.Fatal(err)
				}
				if err := pg.Merge(r.Commit); err != nil {
					t.Fatal(err)
				}
				if got := held(&pg); got > 256<<10 {
					t.Errorf("a PublicGroup of a 3-member group holds %d KiB after processing a commit with 1 MiB of authenticated data", got>>10)
				}
			}
			if got := held(&bob.g); got > 256<<10 {
				t.Errorf("a member of a 3-member group holds %d KiB after processing a commit with 1 MiB of authenticated data", got>>10)
			}
			runtime.KeepAlive(all)
		})
	}
}
