package mls

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// Hooks that make FuzzStatefulGroup cheap per execution without checking
// less: a memoised KeyAvailability and a clone of a PublicGroup.

// availMemo maps the structure of one secret tree (see availKey) to its
// KeyAvailability lines.
var availMemo sync.Map

// KeyAvailabilityMemo returns what KeyAvailability returns, computing the
// lines of each secret tree once per tree structure. Peek's answer for a
// leaf, ratchet and generation depends only on the tree's limits, whether
// it was erased, and that leaf's ratchet: uninitialised, or its next
// generation and the generations of its kept keys, which
// secrettree.Tree.AppendLeafSummary lists exactly. The key holds all of
// these for every member leaf, so two trees with the same key give the
// same lines. TestFuzzHooks and every non-fuzzing run of
// FuzzStatefulGroup compare it with KeyAvailability.
func KeyAvailabilityMemo(g *Group, gens int) string {
	var b strings.Builder
	describe := func(label string, t *secrettree.Tree, members func(func(treemath.LeafIndex, *wire.LeafNode) bool)) {
		key := availKey(label, t, members, gens)
		if v, ok := availMemo.Load(key); ok {
			b.WriteString(v.(string))
			return
		}
		var lb strings.Builder
		describeAvailability(&lb, label, t, members, gens)
		availMemo.Store(key, lb.String())
		b.WriteString(lb.String())
	}
	if g.st.secrets != nil {
		describe(fmt.Sprintf("epoch %d", g.st.ctx.Epoch), g.st.secrets, g.st.tree.Members)
	}
	for _, p := range g.past {
		describe(fmt.Sprintf("past epoch %d", p.epoch), p.fe.Tree, p.tree.Members)
	}
	return b.String()
}

func availKey(label string, t *secrettree.Tree, members func(func(treemath.LeafIndex, *wire.LeafNode) bool), gens int) string {
	tol, fwd := t.Limits()
	buf := fmt.Appendf(nil, "%s|%d|%d|%d|%d|", label, gens, t.Leaves(), tol, fwd)
	// An erased tree has no ratchets, like a fresh one: one Peek tells
	// them apart (ErrErased).
	_, _, err := t.Peek(0, secrettree.Handshake, 0)
	buf = fmt.Appendf(buf, "%v|", errors.Is(err, secrettree.ErrErased))
	members(func(l treemath.LeafIndex, _ *wire.LeafNode) bool {
		s := t.AppendLeafSummary(nil, l)
		buf = fmt.Appendf(buf, "%d:%d:", l, len(s))
		buf = append(buf, s...)
		return true
	})
	return string(buf)
}

// describeAvailability writes the KeyAvailability lines of one tree.
func describeAvailability(b *strings.Builder, label string, t *secrettree.Tree, members func(func(treemath.LeafIndex, *wire.LeafNode) bool), gens int) {
	members(func(l treemath.LeafIndex, _ *wire.LeafNode) bool {
		for _, kind := range []secrettree.Kind{secrettree.Handshake, secrettree.Application} {
			fmt.Fprintf(b, "%s leaf %d %v:", label, l, kind)
			for gen := range gens {
				_, _, err := t.Peek(l, kind, uint32(gen))
				switch {
				case err == nil:
					b.WriteString(" +")
				case errors.Is(err, secrettree.ErrGenerationUsed):
					b.WriteString(" u")
				case errors.Is(err, secrettree.ErrOutsideWindow):
					b.WriteString(" o")
				default:
					b.WriteString(" x")
				}
			}
			b.WriteString("\n")
		}
		return true
	})
}

// ClonePublicGroup returns an independent copy of p, as NewPublicGroup
// would build it again from the same GroupInfo, without verifying the
// GroupInfo again. A PublicGroup holds no secret, so nothing of it is
// erased in place; the ratchet tree is copied on write (Tree.Clone); the
// rest is copied.
func ClonePublicGroup(p *PublicGroup) (*PublicGroup, error) {
	st := p.g.st
	if st.priv != nil || st.keys != nil || st.secrets != nil || len(p.g.past) != 0 || p.g.pending != nil {
		return nil, errors.New("mls: not a PublicGroup's state")
	}
	ctx, err := Redecode(st.ctx)
	if err != nil {
		return nil, err
	}
	c := &epochState{s: st.s, ctx: ctx, ctxBytes: bytes.Clone(st.ctxBytes), tree: st.tree.Clone(), me: st.me,
		interim: bytes.Clone(st.interim), confTag: bytes.Clone(st.confTag)}
	for _, cp := range st.proposals {
		q := *cp
		if q.proposal, err = Redecode(cp.proposal); err != nil {
			return nil, err
		}
		q.ref = bytes.Clone(cp.ref)
		c.proposals = append(c.proposals, &q)
	}
	if st.reinit != nil {
		if c.reinit, err = Redecode(st.reinit); err != nil {
			return nil, err
		}
	}
	return &PublicGroup{g: &Group{cfg: p.g.cfg, st: c, removed: p.g.removed}}, nil
}
