package mls_test

import (
	"testing"

	"github.com/mlskit/mlskit/mls"
)

// TestLoadedGroupKeepsItsTreeHash: a Group restored from saved state has no
// tree hash cached (the load checks the tree against a digest instead). The
// first commit it stages computes the hash of the whole tree; that must be
// kept by the epoch's tree, not by the staged copy alone, or every further
// commit staged in the epoch (competing commits, a commit of our own after
// one processed and discarded) hashes the whole tree again. So a loaded
// group's second Process must cost what it costs a group whose tree hash is
// already cached, and not 2n node hashes more.
func TestLoadedGroupKeepsItsTreeHash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 256-member group")
	}
	g, err := buildSparseBenchGroup(256)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.fillPaths(); err != nil { // a full tree: a node hash per node
		t.Fatal(err)
	}
	commits := g.competingCommits(t, 7)
	blob, err := g.creator.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	load := func() *mls.Group {
		l, err := mls.UnmarshalGroup(g.cfg, blob)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	process := func(l *mls.Group, next int) func() {
		return func() {
			r, err := l.Process(commits[next])
			if err != nil || r.Commit == nil {
				t.Fatalf("Process: %v", err)
			}
			next++
		}
	}
	loaded := load()
	process(loaded, 0)() // the first: hashes the whole tree
	warm := load()
	warm.TreeHash() // caches the tree hash in the epoch's tree
	afterLoad := testing.AllocsPerRun(5, process(loaded, 1))
	cached := testing.AllocsPerRun(5, process(warm, 0))
	t.Logf("allocations per Process: %.0f after a load and one Process, %.0f with the tree hash cached", afterLoad, cached)
	// A whole-tree hash of 256 leaves is hundreds of allocations.
	if afterLoad > cached+50 {
		t.Errorf("a loaded group's second Process allocates %.0f times, %.0f with its tree hash cached: the first Process's tree hash was not kept", afterLoad, cached)
	}
}
