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
	// held is the heap that *p keeps alive: measured by dropping it. Two
	// collections each time: sync.Pool contents survive one.
	held := func(p **mls.Group) int64 {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m0)
		*p = nil
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m1)
		return (int64(m0.HeapAlloc) - int64(m1.HeapAlloc)) / n
	}
	j := held(&joiner)
	c := held(&g.creator)
	runtime.KeepAlive(g) // the rest of the fixture stays, or the drop would count it
	t.Logf("state per member: %d B joined from a Welcome, %d B after processing a commit from every member", j, c)
	if c > 2*j {
		t.Errorf("a member that processed the group's commits holds %d B per member, over twice a joiner's %d B: received commits are being kept", c, j)
	}
}
