package mls

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unsafe"

	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// Hooks that make FuzzStatefulGroup cheap per execution without checking
// less: a memoised KeyAvailability and a clone of a PublicGroup.

// availMemo maps the structure of one secret tree (see availKey) to its
// KeyAvailability lines. A long campaign meets many structures: the memo
// is emptied when it reaches availMemoMax entries, so it stays a few MiB.
var availMemo = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

const availMemoMax = 1 << 12

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
		availMemo.Lock()
		v, ok := availMemo.m[key]
		availMemo.Unlock()
		if !ok {
			var lb strings.Builder
			describeAvailability(&lb, label, t, members, gens)
			v = lb.String()
			availMemo.Lock()
			if len(availMemo.m) >= availMemoMax {
				clear(availMemo.m)
			}
			availMemo.m[key] = v
			availMemo.Unlock()
		}
		b.WriteString(v)
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
// rest is copied. The clone uses cfg.
func ClonePublicGroup(p *PublicGroup, cfg *Config) (*PublicGroup, error) {
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
	return &PublicGroup{g: &Group{cfg: cfg, st: c, removed: p.g.removed}}, nil
}

// CloneGroup returns a deep copy of g that shares nothing it could write
// or erase in place: every pointer, slice and map of the state is copied
// (aliases within the state stay aliases), but for the ratchet trees,
// which are cloned copy-on-write (ratchettree.Tree.Clone); only the suite,
// the Config and interface values (crypto objects, errors), which the
// group never changes, are shared. It stands in for UnmarshalGroup(MarshalBinary(g)),
// which re-validates the whole state and costs a quarter of a fuzz run;
// TestFuzzHooks and every non-fuzzing run of FuzzStatefulGroup check that
// a run on a clone leaves its template as it was.
//
// The clone uses cfg from now on, as UnmarshalGroup would: a fuzz run gives
// each clone a Config whose Rand starts afresh, so the run repeats.
func CloneGroup(g *Group, cfg *Config) *Group {
	c := &deepCopier{seen: map[deepKey]reflect.Value{}}
	n := c.copy(reflect.ValueOf(g)).Interface().(*Group)
	n.cfg = cfg
	return n
}

type deepKey struct {
	p uintptr
	t reflect.Type
}

type deepCopier struct{ seen map[deepKey]reflect.Value }

var (
	sharedSuite  = reflect.TypeOf((*suite.Suite)(nil))
	sharedConfig = reflect.TypeOf((*Config)(nil))
	treeType     = reflect.TypeOf((*ratchettree.Tree)(nil))
)

// copy returns a copy of v, which must be addressable or a pointer.
func (c *deepCopier) copy(v reflect.Value) reflect.Value {
	t := v.Type()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || t == sharedSuite || t == sharedConfig {
			return v
		}
		k := deepKey{v.Pointer(), t}
		if n, ok := c.seen[k]; ok {
			return n
		}
		if t == treeType {
			// The ratchet tree holds no secret and copies on write: its
			// own Clone is independent of it, and far cheaper than a
			// walk of every chunk.
			n := reflect.ValueOf(v.Interface().(*ratchettree.Tree).Clone())
			c.seen[k] = n
			return n
		}
		n := reflect.New(t.Elem())
		c.seen[k] = n
		n.Elem().Set(c.copy(v.Elem()))
		return n
	case reflect.Struct:
		n := reflect.New(t).Elem()
		for i := range t.NumField() {
			field(n, i).Set(c.copy(field(v, i)))
		}
		return n
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		n := reflect.MakeSlice(t, v.Len(), v.Cap())
		for i := range v.Len() {
			n.Index(i).Set(c.copy(v.Index(i)))
		}
		return n
	case reflect.Array:
		n := reflect.New(t).Elem()
		for i := range v.Len() {
			n.Index(i).Set(c.copy(v.Index(i)))
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		n := reflect.MakeMapWithSize(t, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, e := addressable(it.Key()), addressable(it.Value())
			n.SetMapIndex(c.copy(k), c.copy(e))
		}
		return n
	default:
		// Scalars; and interfaces, funcs and channels, shared.
		return v
	}
}

// field is v's i-th field, settable even if unexported (v addressable).
func field(v reflect.Value, i int) reflect.Value {
	f := v.Field(i)
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

func addressable(v reflect.Value) reflect.Value {
	n := reflect.New(v.Type()).Elem()
	n.Set(v)
	return n
}
