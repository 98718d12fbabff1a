package secrettree

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/mlskit/mlskit/internal/treemath"
)

// snapshot renders everything a tree holds, secrets included, so that two
// snapshots are equal exactly when the state is.
func snapshot(t *Tree) string {
	var b bytes.Buffer
	var xs []int
	for x := range t.nodes {
		xs = append(xs, int(x))
	}
	sort.Ints(xs)
	for _, x := range xs {
		fmt.Fprintf(&b, "node %d %x\n", x, []byte(t.nodes[treemath.NodeIndex(x)]))
	}
	var ls []int
	for l := range t.ratchets {
		ls = append(ls, int(l))
	}
	sort.Ints(ls)
	for _, l := range ls {
		lr := t.ratchets[treemath.LeafIndex(l)]
		for _, r := range []*ratchet{&lr.handshake, &lr.application} {
			fmt.Fprintf(&b, "leaf %d next %d %x\n", l, r.next, []byte(r.secret))
			for _, e := range r.window {
				fmt.Fprintf(&b, "  %d %x %x\n", e.gen, []byte(e.key), []byte(e.nonce))
			}
		}
	}
	return b.String()
}

// Peek answers exactly as Get would, and changes nothing.
func TestPeekMatchesGetAndChangesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := newTree(t, 8, Config{OutOfOrderTolerance: 4, MaxForwardDistance: 20})
	outcomes := map[error]int{}
	for i := range 3000 {
		leaf := treemath.LeafIndex(rng.IntN(9)) // 8 is out of range
		kind := Kind(1 + rng.IntN(2))
		if rng.IntN(50) == 0 {
			kind = Kind(3)
		}
		var gen uint32
		if r := tr.initialised(leaf, kind); r != nil {
			gen = uint32(max(0, int(r.next)+rng.IntN(30)-8))
		} else {
			gen = uint32(rng.IntN(25))
		}
		if rng.IntN(10) == 0 {
			// Senders move the ratchets too.
			_, _, _, _ = tr.Next(leaf, kind)
			continue
		}
		before := snapshot(tr)
		pk, pn, perr := tr.Peek(leaf, kind, gen)
		if after := snapshot(tr); after != before {
			t.Fatalf("step %d: Peek(%d, %v, %d) changed the tree", i, leaf, kind, gen)
		}
		gk, gn, gerr := tr.Get(leaf, kind, gen)
		if errors.Unwrap(perr) != errors.Unwrap(gerr) {
			t.Fatalf("step %d: Peek error %v, Get error %v", i, perr, gerr)
		}
		if !bytes.Equal(pk, gk) || !bytes.Equal(pn, gn) {
			t.Fatalf("step %d: Peek and Get disagree on leaf %d %v generation %d", i, leaf, kind, gen)
		}
		outcomes[errors.Unwrap(gerr)]++
	}
	// The sequence must reach every outcome, or it tests less than it seems.
	for _, want := range []error{nil, ErrGenerationUsed, ErrOutsideWindow, ErrTooFarAhead, ErrLeafOutOfRange, errBadKind} {
		if outcomes[want] == 0 {
			t.Errorf("outcome %v never reached: %v", want, outcomes)
		}
	}
}
