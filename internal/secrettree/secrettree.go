// Package secrettree is the secret tree of one MLS epoch (RFC 9420, Section
// 9): the tree of secrets rooted at encryption_secret, and for each leaf a
// handshake and an application hash ratchet that yield one key and nonce per
// generation (Section 9.1).
//
// # Sending and receiving
//
// A sender calls Next for its own leaf: it returns the next unused generation
// with its key and nonce, and advances the ratchet. A receiver calls Get with
// the leaf and generation named in a PrivateMessage's sender data. Both
// consume what they return: the tree keeps no copy, and asking again for the
// same generation fails with ErrGenerationUsed. The caller should Erase the
// key and nonce once it has used them. Peek answers as Get would without
// consuming anything, so a receiver can decrypt first and consume only on
// success (a failed operation then leaves the tree as it was). The reuse
// guard (Section 6.3.1) is the framing layer's job: the nonce returned here
// is the ratchet's nonce.
//
// # Out-of-order delivery
//
// Get accepts a generation ahead of the ratchet, up to
// Config.MaxForwardDistance generations ahead, and keeps the keys of the
// generations it skips so that late messages can still be read: at most
// Config.OutOfOrderTolerance generations older than the newest one the
// ratchet has reached. Keys that fall out of that window are erased
// (ErrOutsideWindow). The defaults, 5 and 1000, are those of OpenMLS.
//
// # Forward secrecy and cost
//
// The tree follows the deletion schedule of Section 9.2. Tree secrets are
// derived lazily from the root: deriving a leaf derives both children of each
// node on its path, keeps the sibling off the path and erases the parent, so
// a new tree holds one secret however many leaves it has, and the first use
// of a leaf costs O(log n) derivations. Once its two ratchets are
// initialised, a leaf's secret is erased too. A ratchet holds only its
// current secret and the skipped keys inside its window; advancing it erases
// the old secret. Every erased secret is overwritten with zeros.
//
// A Tree is not safe for concurrent use.
package secrettree

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// Labels of the secret tree (RFC 9420, Sections 9 and 9.1).
const (
	labelTree        = "tree"
	labelHandshake   = "handshake"
	labelApplication = "application"
	labelSecret      = "secret"
)

// Contexts of the tree derivation (RFC 9420, Section 9).
var (
	contextLeft  = []byte("left")
	contextRight = []byte("right")
)

// Kind selects one of a leaf's two ratchets (RFC 9420, Section 9).
type Kind uint8

// Ratchet kinds.
const (
	Handshake   Kind = 1 // proposals and commits
	Application Kind = 2 // application messages
)

// String returns "handshake" or "application".
func (k Kind) String() string {
	switch k {
	case Handshake:
		return "handshake"
	case Application:
		return "application"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// KindOf returns the ratchet that protects content of type ct: the
// application ratchet for application data and the handshake ratchet for
// proposals and commits (RFC 9420, Section 6.3.1).
func KindOf(ct wire.ContentType) (Kind, bool) {
	switch ct {
	case wire.ContentTypeApplication:
		return Application, true
	case wire.ContentTypeProposal, wire.ContentTypeCommit:
		return Handshake, true
	}
	return 0, false
}

// Errors. Every error Next and Get return for a leaf or generation wraps one
// of these and is an *Error.
var (
	// ErrLeafOutOfRange: the leaf index is not a leaf of the tree.
	ErrLeafOutOfRange = errors.New("secrettree: leaf index out of range")
	// ErrGenerationUsed: the generation's key was already consumed (or, for
	// a sender, already handed out).
	ErrGenerationUsed = errors.New("secrettree: generation already used")
	// ErrOutsideWindow: the generation is older than the out-of-order
	// window, so its key was erased.
	ErrOutsideWindow = errors.New("secrettree: generation outside the out-of-order window")
	// ErrTooFarAhead: the generation is more than MaxForwardDistance ahead of
	// the ratchet.
	ErrTooFarAhead = errors.New("secrettree: generation too far ahead")
	// ErrExhausted: the ratchet has used all 2^32 generations.
	ErrExhausted = errors.New("secrettree: ratchet exhausted")
	// ErrErased: the tree was erased.
	ErrErased = errors.New("secrettree: tree erased")
)

// Error describes a failed Next or Get. It never contains key material.
type Error struct {
	Leaf       treemath.LeafIndex
	Kind       Kind
	Generation uint32 // the generation asked for (Get only)
	Err        error  // one of the sentinel errors above
}

func (e *Error) Error() string {
	return fmt.Sprintf("%v (leaf %d, %v ratchet, generation %d)", e.Err, e.Leaf, e.Kind, e.Generation)
}

func (e *Error) Unwrap() error { return e.Err }

// Default limits (see Config).
const (
	DefaultOutOfOrderTolerance = 5
	DefaultMaxForwardDistance  = 1000
)

// Config sets a tree's out-of-order limits. The zero Config means the
// defaults.
type Config struct {
	// OutOfOrderTolerance is how many generations older than the newest
	// generation a ratchet has reached may still be decrypted: the keys of
	// skipped generations in that window are kept, older ones erased. Keeping
	// keys weakens forward secrecy within the epoch, so keep it small.
	// 0 means DefaultOutOfOrderTolerance; a negative value keeps none.
	OutOfOrderTolerance int

	// MaxForwardDistance is how many generations Get may skip to reach the
	// one asked for; it bounds the work a single message can cause.
	// 0 means DefaultMaxForwardDistance; a negative value skips none (only
	// the ratchet's next generation, or one kept in the window, is
	// accepted).
	MaxForwardDistance int
}

// limits resolves the zero and negative conventions of Config.
func (c Config) limits() (tolerance, forward uint32) {
	resolve := func(v, def int) uint32 {
		switch {
		case v == 0:
			return uint32(def)
		case v < 0:
			return 0
		case v > math.MaxUint32:
			return math.MaxUint32
		}
		return uint32(v)
	}
	return resolve(c.OutOfOrderTolerance, DefaultOutOfOrderTolerance),
		resolve(c.MaxForwardDistance, DefaultMaxForwardDistance)
}

// Tree is the secret tree of one epoch.
type Tree struct {
	s         *suite.Suite
	leaves    uint32
	root      treemath.NodeIndex
	tolerance uint32
	forward   uint32
	erased    bool

	// nodes holds the tree secrets not yet split into their children: the
	// frontier between derived and underived parts of the tree. Every leaf
	// whose ratchets are not initialised has exactly one ancestor (or
	// itself) here.
	nodes map[treemath.NodeIndex]keyschedule.Secret

	// ratchets holds the initialised leaves.
	ratchets map[treemath.LeafIndex]*leafRatchets
}

type leafRatchets struct {
	handshake, application ratchet
}

// New returns the secret tree of an epoch whose ratchet tree has leaves
// leaves, with encryptionSecret (the epoch's encryption_secret) at the root
// (RFC 9420, Section 9). leaves must be a power of two, as every RFC 9420
// ratchet tree's leaf count is (Section 7.7). The tree copies
// encryptionSecret; the caller should erase its own copy, which Section 9.2
// counts as consumed once the tree exists.
func New(s *suite.Suite, encryptionSecret keyschedule.Secret, leaves uint32, cfg Config) (*Tree, error) {
	if leaves == 0 || bits.OnesCount32(leaves) != 1 {
		return nil, errors.New("secrettree: leaf count must be a power of two")
	}
	if len(encryptionSecret) != s.HashSize() {
		return nil, errors.New("secrettree: encryption_secret has the wrong length for the cipher suite")
	}
	tol, fwd := cfg.limits()
	root := treemath.Root(leaves)
	return &Tree{
		s:         s,
		leaves:    leaves,
		root:      root,
		tolerance: tol,
		forward:   fwd,
		nodes:     map[treemath.NodeIndex]keyschedule.Secret{root: encryptionSecret.Clone()},
		ratchets:  map[treemath.LeafIndex]*leafRatchets{},
	}, nil
}

// Leaves returns the number of leaves.
func (t *Tree) Leaves() uint32 { return t.leaves }

// Erase zeroes every secret the tree holds; afterwards Next and Get fail with
// ErrErased. Call it when the epoch ends.
func (t *Tree) Erase() {
	for x, v := range t.nodes {
		v.Erase()
		delete(t.nodes, x)
	}
	for l, r := range t.ratchets {
		r.handshake.erase()
		r.application.erase()
		delete(t.ratchets, l)
	}
	t.erased = true
}

// Next returns the key and nonce of the next unused generation of leaf's
// ratchet of the given kind, for a sender protecting a message (RFC 9420,
// Sections 6.3.1 and 9.1), and advances the ratchet. The tree keeps no copy.
func (t *Tree) Next(leaf treemath.LeafIndex, kind Kind) (generation uint32, key, nonce keyschedule.Secret, err error) {
	r, err := t.ratchet(leaf, kind)
	if err != nil {
		return 0, nil, nil, &Error{Leaf: leaf, Kind: kind, Err: err}
	}
	if r.next > math.MaxUint32 {
		return 0, nil, nil, &Error{Leaf: leaf, Kind: kind, Err: ErrExhausted}
	}
	generation = uint32(r.next)
	key, nonce = r.step(t.s, t.tolerance)
	return generation, key, nonce, nil
}

// Get returns the key and nonce of generation of leaf's ratchet of the given
// kind, for a receiver (RFC 9420, Sections 6.3.2 and 9.1), and consumes them:
// a second Get for the same generation fails with ErrGenerationUsed. A
// generation ahead of the ratchet advances it, keeping the keys of skipped
// generations that stay inside the out-of-order window.
//
// Get consumes the key before the caller has decrypted with it, so a message
// that then fails to decrypt would still use up its generation. A receiver
// that must leave the tree untouched by a message that fails (a forged or
// corrupted one) calls Peek, decrypts, and calls Get only on success.
func (t *Tree) Get(leaf treemath.LeafIndex, kind Kind, generation uint32) (key, nonce keyschedule.Secret, err error) {
	fail := func(err error) (keyschedule.Secret, keyschedule.Secret, error) {
		return nil, nil, &Error{Leaf: leaf, Kind: kind, Generation: generation, Err: err}
	}
	if err := t.check(leaf, kind); err != nil {
		return fail(err)
	}
	g := uint64(generation)
	if r := t.initialised(leaf, kind); r != nil && g < r.next {
		// A past generation: only a kept skipped key can serve it.
		if key, nonce, ok := r.take(generation); ok {
			return key, nonce, nil
		}
		if g+uint64(t.tolerance)+1 < r.next {
			return fail(ErrOutsideWindow)
		}
		return fail(ErrGenerationUsed)
	}
	// A current or future generation. Check the distance before deriving the
	// leaf, so that a far-fetched request costs nothing. An uninitialised
	// ratchet is at generation 0.
	next := uint64(0)
	if r := t.initialised(leaf, kind); r != nil {
		next = r.next
	}
	if g-next > uint64(t.forward) {
		return fail(ErrTooFarAhead)
	}
	r, err := t.ratchet(leaf, kind)
	if err != nil {
		return fail(err)
	}
	// Skip to the generation, keeping the keys of skipped generations that
	// will be inside the window once generation is the newest.
	for r.next < g {
		if r.next+uint64(t.tolerance) >= g {
			gen := uint32(r.next)
			k, n := r.step(t.s, t.tolerance)
			r.store(gen, k, n, t.tolerance)
		} else {
			r.advance(t.s, t.tolerance)
		}
	}
	key, nonce = r.step(t.s, t.tolerance)
	return key, nonce, nil
}

var errBadKind = errors.New("secrettree: unknown ratchet kind")

// check validates a request's leaf and kind.
func (t *Tree) check(leaf treemath.LeafIndex, kind Kind) error {
	switch {
	case kind != Handshake && kind != Application:
		return errBadKind
	case t.erased:
		return ErrErased
	case uint32(leaf) >= t.leaves:
		return ErrLeafOutOfRange
	}
	return nil
}

// initialised returns leaf's ratchet of the given kind if the leaf has been
// derived, and nil otherwise (also for a bad leaf or kind).
func (t *Tree) initialised(leaf treemath.LeafIndex, kind Kind) *ratchet {
	lr := t.ratchets[leaf]
	if lr == nil {
		return nil
	}
	return lr.get(kind)
}

func (lr *leafRatchets) get(kind Kind) *ratchet {
	switch kind {
	case Handshake:
		return &lr.handshake
	case Application:
		return &lr.application
	}
	return nil
}

// ratchet returns leaf's ratchet of the given kind, deriving the leaf first
// if needed.
func (t *Tree) ratchet(leaf treemath.LeafIndex, kind Kind) (*ratchet, error) {
	if err := t.check(leaf, kind); err != nil {
		return nil, err
	}
	lr := t.ratchets[leaf]
	if lr == nil {
		var err error
		if lr, err = t.deriveLeaf(leaf); err != nil {
			return nil, err
		}
	}
	return lr.get(kind), nil
}

// deriveLeaf derives leaf's secret from the nearest secret above it and
// initialises its two ratchets (RFC 9420, Section 9). Every node split on
// the way is erased and its off-path child kept (Section 9.2).
func (t *Tree) deriveLeaf(leaf treemath.LeafIndex) (*leafRatchets, error) {
	target := leaf.Node()
	// Find the frontier node above target, walking down from the root.
	x := t.root
	for {
		if _, ok := t.nodes[x]; ok {
			break
		}
		if x == target {
			// Invariant broken: an uninitialised leaf always has a
			// frontier ancestor. Only erasure can get here.
			return nil, ErrErased
		}
		x = t.toward(x, target)
	}
	// Split nodes down to the leaf.
	for x != target {
		secret := t.nodes[x]
		left, _ := treemath.Left(x)
		right, _ := treemath.Right(x)
		ls := keyschedule.Secret(t.s.ExpandWithLabel(secret, labelTree, contextLeft, t.s.HashSize()))
		rs := keyschedule.Secret(t.s.ExpandWithLabel(secret, labelTree, contextRight, t.s.HashSize()))
		t.nodes[left], t.nodes[right] = ls, rs
		secret.Erase()
		delete(t.nodes, x)
		x = t.toward(x, target)
	}
	secret := t.nodes[target]
	lr := &leafRatchets{
		handshake:   ratchet{secret: t.s.ExpandWithLabel(secret, labelHandshake, nil, t.s.HashSize())},
		application: ratchet{secret: t.s.ExpandWithLabel(secret, labelApplication, nil, t.s.HashSize())},
	}
	secret.Erase()
	delete(t.nodes, target)
	t.ratchets[leaf] = lr
	return lr, nil
}

// toward returns the child of x on the way to the leaf node target, which
// lies below x: leaves left of a parent have smaller indices.
func (t *Tree) toward(x, target treemath.NodeIndex) treemath.NodeIndex {
	if target < x {
		c, _ := treemath.Left(x)
		return c
	}
	c, _ := treemath.Right(x)
	return c
}

// Peek returns what Get would return for the same arguments, with the same
// errors, but changes nothing: no tree node, ratchet or kept key is derived,
// advanced or removed. It costs as much as Get, so Peek then Get costs
// twice the derivations of Get alone (a few HMACs, small beside the
// signature check a message needs anyway).
func (t *Tree) Peek(leaf treemath.LeafIndex, kind Kind, generation uint32) (key, nonce keyschedule.Secret, err error) {
	fail := func(err error) (keyschedule.Secret, keyschedule.Secret, error) {
		return nil, nil, &Error{Leaf: leaf, Kind: kind, Generation: generation, Err: err}
	}
	if err := t.check(leaf, kind); err != nil {
		return fail(err)
	}
	g := uint64(generation)
	r := t.initialised(leaf, kind)
	if r != nil && g < r.next {
		if e := r.lookup(generation); e != nil {
			return e.key.Clone(), e.nonce.Clone(), nil
		}
		if g+uint64(t.tolerance)+1 < r.next {
			return fail(ErrOutsideWindow)
		}
		return fail(ErrGenerationUsed)
	}
	var (
		next   uint64
		secret keyschedule.Secret
	)
	if r != nil {
		next = r.next
	}
	if g-next > uint64(t.forward) {
		return fail(ErrTooFarAhead)
	}
	if r != nil {
		secret = r.secret.Clone()
	} else {
		ls, err := t.peekLeaf(leaf.Node())
		if err != nil {
			return fail(err)
		}
		label := labelHandshake
		if kind == Application {
			label = labelApplication
		}
		secret = t.s.ExpandWithLabel(ls, label, nil, t.s.HashSize())
		ls.Erase()
	}
	// Walk a scratch copy of the ratchet to the generation.
	tmp := ratchet{secret: secret, next: next}
	for tmp.next < g {
		tmp.advance(t.s, 0)
	}
	key, nonce = tmp.keyNonce(t.s)
	tmp.erase()
	return key, nonce, nil
}

// peekLeaf derives the secret of the leaf node target from the frontier
// without storing anything (RFC 9420, Section 9).
func (t *Tree) peekLeaf(target treemath.NodeIndex) (keyschedule.Secret, error) {
	x := t.root
	for {
		if _, ok := t.nodes[x]; ok {
			break
		}
		if x == target {
			return nil, ErrErased
		}
		x = t.toward(x, target)
	}
	secret := t.nodes[x].Clone()
	for x != target {
		c := t.toward(x, target)
		ctx := contextRight
		if c < x {
			ctx = contextLeft
		}
		child := keyschedule.Secret(t.s.ExpandWithLabel(secret, labelTree, ctx, t.s.HashSize()))
		secret.Erase()
		secret, x = child, c
	}
	return secret, nil
}
