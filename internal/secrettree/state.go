package secrettree

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
)

// Saving and restoring a tree.
//
// A client that restarts must resume each secret tree exactly where it was:
// a sender that forgot how far its ratchet had gone would reuse a key and
// nonce (RFC 9420, Section 9.2), and a receiver that forgot which keys it
// consumed would accept a replay. The tree's state is split in two, so that
// the common change (one ratchet moving) rewrites little:
//
//   - the skeleton: the limits, the frontier of underived tree secrets and the
//     list of leaves whose ratchets are initialised. It changes when a new
//     leaf is derived.
//   - one LeafState per initialised leaf: its two ratchets, each with its
//     current secret, next generation and the kept keys of its out-of-order
//     window. It changes whenever the leaf's ratchets move.
//
// The encodings, in the TLS presentation language of RFC 9420, Section 2.1
// (mlskit's own, not part of RFC 9420; the caller versions them):
//
//	struct {
//	    uint32 leaves;
//	    uint32 tolerance;
//	    uint32 forward;
//	    bool erased;
//	    NodeSecret frontier<V>;     // ascending node index
//	    uint32 initialised<V>;      // ascending leaf index
//	} Skeleton;
//
//	struct { uint32 node; opaque secret<V>; } NodeSecret;
//
//	struct {
//	    uint32 leaf;
//	    RatchetState handshake;
//	    RatchetState application;
//	} LeafState;
//
//	struct {
//	    uint64 next;                 // at most 2^32
//	    optional<opaque secret<V>>;  // absent exactly when next == 2^32
//	    KeptKey kept<V>;             // ascending generation
//	} RatchetState;
//
//	struct { uint32 generation; opaque key<V>; opaque nonce<V>; } KeptKey;
//
// Restore checks everything a corrupted or forged blob could get wrong
// (lengths, ranges, the frontier covering each uninitialised leaf exactly
// once, kept keys inside the window) and fails with ErrCorruptState; it never
// panics.

// MaxRestoredTolerance is the largest out-of-order tolerance Restore
// accepts: a ratchet keeping a key allocates a window of that many entries
// (about 56 bytes each), and a few bytes of stored state must not be able to
// demand megabytes. A tree created with a larger Config.OutOfOrderTolerance
// cannot be restored; callers should refuse to save it.
const MaxRestoredTolerance = 1024

// ErrCorruptState means a saved tree state does not decode or is not a
// state a Tree can be in.
var ErrCorruptState = errors.New("secrettree: corrupt saved state")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptState, fmt.Sprintf(format, args...))
}

// MarshalSkeleton appends the tree's skeleton (see above) to b.
func (t *Tree) MarshalSkeleton(b *codec.Builder) {
	b.AddUint32(t.leaves)
	b.AddUint32(t.tolerance)
	b.AddUint32(t.forward)
	b.AddBool(t.erased)
	nodes := make([]treemath.NodeIndex, 0, len(t.nodes))
	for x := range t.nodes {
		nodes = append(nodes, x)
	}
	slices.Sort(nodes)
	b.AddVector(func(b *codec.Builder) {
		for _, x := range nodes {
			b.AddUint32(uint32(x))
			b.AddOpaque(t.nodes[x])
		}
	})
	b.AddVector(func(b *codec.Builder) {
		for _, l := range t.Initialised() {
			b.AddUint32(uint32(l))
		}
	})
}

// Initialised returns the leaves whose ratchets are initialised, in
// ascending order: the leaves that have a LeafState.
func (t *Tree) Initialised() []treemath.LeafIndex {
	out := make([]treemath.LeafIndex, 0, len(t.ratchets))
	for l := range t.ratchets {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// MarshalLeaf appends the LeafState of leaf l to b. It fails if l is not
// initialised.
func (t *Tree) MarshalLeaf(b *codec.Builder, l treemath.LeafIndex) error {
	lr := t.ratchets[l]
	if lr == nil {
		return fmt.Errorf("secrettree: leaf %d is not initialised", l)
	}
	b.AddUint32(uint32(l))
	lr.handshake.marshal(b)
	lr.application.marshal(b)
	return nil
}

func (r *ratchet) marshal(b *codec.Builder) {
	b.AddUint64(r.next)
	b.AddOptional(r.secret != nil)
	if r.secret != nil {
		b.AddOpaque(r.secret)
	}
	kept := make([]*entry, 0, len(r.window))
	for i := range r.window {
		if r.window[i].key != nil {
			kept = append(kept, &r.window[i])
		}
	}
	slices.SortFunc(kept, func(a, b *entry) int { return int(int64(a.gen) - int64(b.gen)) })
	b.AddVector(func(b *codec.Builder) {
		for _, e := range kept {
			b.AddUint32(e.gen)
			b.AddOpaque(e.key)
			b.AddOpaque(e.nonce)
		}
	})
}

// AppendLeafSummary appends to buf a description of leaf l's ratchets that
// holds no key material: each ratchet's next generation and the
// generations of its kept keys. Two states of the same leaf in the same
// epoch hold the same secrets exactly when their summaries are equal (every
// secret is a function of the epoch's encryption_secret and these numbers),
// so a caller can tell whether a leaf changed since it was last saved
// without hashing secrets. An uninitialised leaf appends nothing.
func (t *Tree) AppendLeafSummary(buf []byte, l treemath.LeafIndex) []byte {
	lr := t.ratchets[l]
	if lr == nil {
		return buf
	}
	for _, r := range []*ratchet{&lr.handshake, &lr.application} {
		buf = appendU64(buf, r.next)
		n := 0
		for i := range r.window {
			if r.window[i].key != nil {
				n++
			}
		}
		buf = appendU64(buf, uint64(n))
		for i := range r.window {
			if e := &r.window[i]; e.key != nil {
				buf = appendU64(buf, uint64(e.gen))
			}
		}
	}
	return buf
}

func appendU64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// Restore rebuilds a tree from its skeleton and the LeafStates of every
// initialised leaf, each leafStates element holding any number of
// LeafStates back to back. It checks that the state is one a Tree can be
// in and fails with an error wrapping ErrCorruptState otherwise. The
// returned tree owns copies of every secret; the caller may erase its
// inputs.
func Restore(s *suite.Suite, skeleton []byte, leafStates ...[]byte) (*Tree, error) {
	r := codec.NewReader(skeleton)
	t := &Tree{s: s, nodes: map[treemath.NodeIndex]keyschedule.Secret{}, ratchets: map[treemath.LeafIndex]*leafRatchets{}}
	fail := func(err error) (*Tree, error) {
		for l, lr := range t.ratchets {
			if lr == nil {
				delete(t.ratchets, l) // a placeholder not yet filled
			}
		}
		t.Erase()
		return nil, err
	}
	if !r.ReadUint32(&t.leaves) || !r.ReadUint32(&t.tolerance) || !r.ReadUint32(&t.forward) || !r.ReadBool(&t.erased) {
		return fail(corrupt("truncated skeleton"))
	}
	if t.leaves == 0 || t.leaves&(t.leaves-1) != 0 || t.leaves > 1<<30 {
		return fail(corrupt("leaf count %d is not a power of two", t.leaves))
	}
	if t.tolerance > MaxRestoredTolerance {
		// A ratchet's window is allocated at full size; refuse a stored
		// value that would make one blob cost gigabytes.
		return fail(corrupt("out-of-order tolerance %d above %d", t.tolerance, MaxRestoredTolerance))
	}
	t.root = treemath.Root(t.leaves)
	width := treemath.Width(t.leaves)
	var (
		frontier []treemath.NodeIndex
		prev     = int64(-1)
		bad      error
	)
	if !r.ReadList(func(r *codec.Reader) bool {
		var x uint32
		var secret []byte
		if !r.ReadUint32(&x) || !r.ReadOpaque(&secret) {
			return false
		}
		switch {
		case int64(x) <= prev:
			bad = corrupt("frontier nodes out of order")
		case x >= width:
			bad = corrupt("frontier node %d outside the tree", x)
		case len(secret) != s.HashSize():
			bad = corrupt("frontier secret length")
		}
		if bad != nil {
			clear(secret)
			return false
		}
		prev = int64(x)
		frontier = append(frontier, treemath.NodeIndex(x))
		t.nodes[treemath.NodeIndex(x)] = secret
		return true
	}) {
		if bad != nil {
			return fail(bad)
		}
		return fail(corrupt("malformed frontier"))
	}
	var inits []treemath.LeafIndex
	prev = -1
	if !r.ReadList(func(r *codec.Reader) bool {
		var l uint32
		if !r.ReadUint32(&l) {
			return false
		}
		if int64(l) <= prev || l >= t.leaves {
			bad = corrupt("initialised leaves out of order or range")
			return false
		}
		prev = int64(l)
		inits = append(inits, treemath.LeafIndex(l))
		return true
	}) {
		if bad != nil {
			return fail(bad)
		}
		return fail(corrupt("malformed initialised list"))
	}
	if !r.Empty() {
		return fail(corrupt("trailing bytes after the skeleton"))
	}
	if t.erased && (len(frontier) != 0 || len(inits) != 0) {
		return fail(corrupt("an erased tree holds secrets"))
	}
	if !t.erased {
		if err := checkPartition(t.leaves, frontier, inits); err != nil {
			return fail(err)
		}
	}
	for _, l := range inits {
		t.ratchets[l] = nil // placeholder: must be filled by exactly one LeafState
	}
	for _, blob := range leafStates {
		r := codec.NewReader(blob)
		for !r.Empty() {
			if err := t.readLeaf(r); err != nil {
				return fail(err)
			}
		}
	}
	for l, lr := range t.ratchets {
		if lr == nil {
			return fail(corrupt("no state for initialised leaf %d", l))
		}
	}
	return t, nil
}

// checkPartition checks the tree's invariant: every leaf is either
// initialised or below exactly one frontier node, never both. frontier
// and inits are sorted.
func checkPartition(leaves uint32, frontier []treemath.NodeIndex, inits []treemath.LeafIndex) error {
	covered := uint64(len(inits))
	end := uint64(0) // leaves below end are covered by earlier frontier nodes
	i := 0           // next initialised leaf to compare
	type span struct{ lo, hi uint64 }
	spans := make([]span, 0, len(frontier))
	for _, x := range frontier {
		lvl := treemath.Level(x)
		lo := uint64(x>>(lvl+1)) << lvl
		spans = append(spans, span{lo, lo + 1<<lvl})
	}
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	for _, sp := range spans {
		if sp.lo < end || sp.hi > uint64(leaves) {
			return corrupt("frontier nodes overlap")
		}
		for i < len(inits) && uint64(inits[i]) < sp.lo {
			i++
		}
		if i < len(inits) && uint64(inits[i]) < sp.hi {
			return corrupt("initialised leaf %d is below a frontier node", inits[i])
		}
		covered += sp.hi - sp.lo
		end = sp.hi
	}
	if covered != uint64(leaves) {
		return corrupt("frontier and initialised leaves do not cover the tree")
	}
	return nil
}

// readLeaf reads one LeafState into t.
func (t *Tree) readLeaf(r *codec.Reader) error {
	var l uint32
	if !r.ReadUint32(&l) {
		return corrupt("truncated leaf state")
	}
	lr, ok := t.ratchets[treemath.LeafIndex(l)]
	if !ok {
		return corrupt("state for leaf %d, which is not initialised", l)
	}
	if lr != nil {
		return corrupt("two states for leaf %d", l)
	}
	lr = &leafRatchets{}
	if err := t.readRatchet(r, &lr.handshake); err != nil {
		lr.handshake.erase()
		return err
	}
	if err := t.readRatchet(r, &lr.application); err != nil {
		lr.handshake.erase()
		lr.application.erase()
		return err
	}
	t.ratchets[treemath.LeafIndex(l)] = lr
	return nil
}

func (t *Tree) readRatchet(r *codec.Reader, rt *ratchet) error {
	var present bool
	if !r.ReadUint64(&rt.next) || !r.ReadOptional(&present) {
		return corrupt("truncated ratchet")
	}
	if rt.next > math.MaxUint32+1 {
		return corrupt("ratchet generation out of range")
	}
	if present != (rt.next <= math.MaxUint32) {
		return corrupt("ratchet secret present on an exhausted ratchet, or missing")
	}
	if present {
		if !r.ReadOpaque((*[]byte)(&rt.secret)) {
			return corrupt("truncated ratchet secret")
		}
		if len(rt.secret) != t.s.HashSize() {
			return corrupt("ratchet secret length")
		}
	}
	var bad error
	prev := int64(-1)
	if !r.ReadList(func(r *codec.Reader) bool {
		var e entry
		if !r.ReadUint32(&e.gen) || !r.ReadOpaque((*[]byte)(&e.key)) || !r.ReadOpaque((*[]byte)(&e.nonce)) {
			e.erase()
			return false
		}
		g := uint64(e.gen)
		switch {
		case int64(g) <= prev:
			bad = corrupt("kept keys out of order")
		case t.tolerance == 0:
			bad = corrupt("kept key with no out-of-order window")
		// The window holds generations next-1-tolerance .. next-2
		// (see ratchet.advance).
		case g+2 > rt.next || g+1+uint64(t.tolerance) < rt.next:
			bad = corrupt("kept key outside the window")
		case len(e.key) != t.s.KeySize() || len(e.nonce) != t.s.NonceSize():
			bad = corrupt("kept key length")
		}
		if bad != nil {
			e.erase()
			return false
		}
		prev = int64(g)
		if rt.window == nil {
			rt.window = make([]entry, t.tolerance)
		}
		rt.window[g%uint64(len(rt.window))] = e
		return true
	}) {
		if bad != nil {
			return bad
		}
		return corrupt("malformed kept keys")
	}
	return nil
}

// Limits returns the tree's out-of-order tolerance and maximum forward
// distance, as resolved from its Config.
func (t *Tree) Limits() (tolerance, forward uint32) { return t.tolerance, t.forward }

// NextGeneration returns the next generation leaf's ratchet of the given
// kind would hand out (0 for a leaf not yet initialised): for a sender's own
// leaf, how many messages of that kind it has sent in the epoch.
func (t *Tree) NextGeneration(leaf treemath.LeafIndex, kind Kind) uint64 {
	if r := t.initialised(leaf, kind); r != nil {
		return r.next
	}
	return 0
}

// SkeletonLeaves returns the initialised leaves a skeleton lists, without
// restoring it, so that a caller can fetch the LeafStates Restore needs.
// It fails with ErrCorruptState if the skeleton does not decode.
func SkeletonLeaves(skeleton []byte) ([]treemath.LeafIndex, error) {
	r := codec.NewReader(skeleton)
	var leaves, tol, fwd uint32
	var erased bool
	var out []treemath.LeafIndex
	ok := r.ReadUint32(&leaves) && r.ReadUint32(&tol) && r.ReadUint32(&fwd) && r.ReadBool(&erased) &&
		r.ReadVector(func(v *codec.Reader) bool { return v.Skip(v.Len()) }) &&
		r.ReadList(func(r *codec.Reader) bool {
			var l uint32
			if !r.ReadUint32(&l) || l >= leaves {
				return false
			}
			out = append(out, treemath.LeafIndex(l))
			return true
		}) && r.Empty()
	if !ok {
		return nil, corrupt("malformed skeleton")
	}
	return out, nil
}
