package art

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/mlskit/mlskit/internal/suite"
)

// Group is one member's view of an ART group: the public tree, the
// roster of signature keys (empty for a vacant slot), and the secrets of
// the nodes on its own path.
type Group struct {
	s        *suite.Suite
	signer   suite.Signer
	me       int
	n        int
	pub      [][]byte       // per node
	sigKeys  [][]byte       // per leaf
	secrets  map[int][]byte // node -> secret, for the nodes on my path
	stage    uint64
	stageKey []byte
	removed  bool
}

// Prekey is what the initiator or an adder needs of a member-to-be: its
// X25519 prekey and its Ed25519 signature key.
type Prekey struct {
	Public []byte
	SigKey []byte
}

// NewPrekey makes an X25519 prekey pair.
func NewPrekey(rand io.Reader) (priv, pub []byte, err error) {
	priv = make([]byte, keySize)
	if _, err := io.ReadFull(rand, priv); err != nil {
		return nil, nil, err
	}
	return priv, pubOf(priv), nil
}

// Suite1 returns MLS cipher suite 1, whose primitives this package uses.
func Suite1() *suite.Suite {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		panic(err)
	}
	return s
}

// Index is this member's leaf.
func (g *Group) Index() int { return g.me }

// Size is the number of leaves, vacant ones included.
func (g *Group) Size() int { return g.n }

// Stage is the number of changes since setup.
func (g *Group) Stage() uint64 { return g.stage }

// StageKey is the current stage key (the group key an application uses).
func (g *Group) StageKey() []byte { return bytes.Clone(g.stageKey) }

// TreeKey is the root secret, exposed for tests and benchmarks.
func (g *Group) TreeKey() []byte { return bytes.Clone(g.secrets[rootIndex(g.n)]) }

// Member reports whether leaf holds a member.
func (g *Group) Member(leaf int) bool { return leaf >= 0 && leaf < g.n && len(g.sigKeys[leaf]) > 0 }

// nextStageKey chains the new tree key into the stage key, bound to the
// message that made it.
func nextStageKey(s *suite.Suite, prev, treeKey, msg []byte) []byte {
	return s.ExpandWithLabel(s.Extract(prev, treeKey), labelStage, s.Hash(msg), keySize)
}

func randomSecret(rand io.Reader) ([]byte, error) {
	b := make([]byte, keySize)
	if _, err := io.ReadFull(rand, b); err != nil {
		return nil, fmt.Errorf("art: reading randomness: %w", err)
	}
	return b, nil
}

// leafFromDH derives a leaf secret from a setup or add key exchange.
func leafFromDH(s *suite.Suite, priv, pub []byte) ([]byte, error) {
	shared, err := dh(nodeKey(priv), pub)
	if err != nil {
		return nil, err
	}
	return s.ExpandWithLabel(shared, labelLeaf, nil, keySize), nil
}

func sign(signer suite.Signer, tbs []byte) ([]byte, error) {
	ops.sign.Add(1)
	return signer.SignWithLabel(labelMessage, tbs)
}

func verify(s *suite.Suite, key, tbs, sig []byte) error {
	ops.verify.Add(1)
	if err := s.VerifyWithLabel(key, labelMessage, tbs, sig); err != nil {
		return ErrInvalidSignature
	}
	return nil
}

// NewGroup is the initiator's setup (the paper's Section 5.1): the
// initiator takes leaf 0 with a fresh secret, derives every other leaf's
// secret from a fresh setup key and that member's prekey, computes the
// whole tree and signs the public tree. It returns the initiator's group
// and the setup message for the others.
func NewGroup(s *suite.Suite, signer suite.Signer, others []Prekey, rand io.Reader) (*Group, []byte, error) {
	n := len(others) + 1
	suk, err := randomSecret(rand)
	if err != nil {
		return nil, nil, err
	}
	leaves := make([][]byte, n)
	if leaves[0], err = randomSecret(rand); err != nil {
		return nil, nil, err
	}
	sigKeys := [][]byte{signer.PublicKey()}
	for i, o := range others {
		if leaves[i+1], err = leafFromDH(s, suk, o.Public); err != nil {
			return nil, nil, fmt.Errorf("art: prekey of member %d: %w", i+1, err)
		}
		sigKeys = append(sigKeys, bytes.Clone(o.SigKey))
	}
	sec := make([][]byte, 2*n-1)
	pub := make([][]byte, 2*n-1)
	var build func(lo, hi int) error
	build = func(lo, hi int) error {
		x := nodeIndex(lo, hi)
		if hi-lo == 1 {
			sec[x] = leaves[lo]
		} else {
			m := lo + pow2Below(hi-lo)
			if err := build(lo, m); err != nil {
				return err
			}
			if err := build(m, hi); err != nil {
				return err
			}
			shared, err := dh(nodeKey(sec[nodeIndex(lo, m)]), pub[nodeIndex(m, hi)])
			if err != nil {
				return err
			}
			sec[x] = iota(s, shared)
		}
		if lo != 0 || hi != n { // the root's public key is never used
			pub[x] = pubOf(sec[x])
		}
		return nil
	}
	if err := build(0, n); err != nil {
		return nil, nil, err
	}
	m := &setup{SetupKey: pubOf(suk), SigKeys: sigKeys, Tree: pub}
	if m.Signature, err = sign(signer, m.tbs()); err != nil {
		return nil, nil, err
	}
	msg := m.marshal()
	g := &Group{s: s, signer: signer, me: 0, n: n, pub: pub, sigKeys: sigKeys, secrets: map[int][]byte{}}
	g.secrets[0] = leaves[0]
	for _, st := range pathOf(n, 0) {
		g.secrets[st.node] = sec[st.node]
	}
	g.stageKey = nextStageKey(s, nil, g.TreeKey(), msg)
	clear(suk)
	return g, msg, nil
}

// Join processes a setup message as the member at leaf me, with its prekey
// and the initiator's signature key (authenticated out of band).
func Join(s *suite.Suite, signer suite.Signer, me int, prekeyPriv, initiatorKey, data []byte) (*Group, error) {
	m, err := parseSetup(data)
	if err != nil {
		return nil, err
	}
	n := len(m.SigKeys)
	if me <= 0 || me >= n || !bytes.Equal(m.SigKeys[0], initiatorKey) || !bytes.Equal(m.SigKeys[me], signer.PublicKey()) {
		return nil, fmt.Errorf("%w: setup does not name this member or its initiator", ErrInvalidMessage)
	}
	if err := verify(s, initiatorKey, m.tbs(), m.Signature); err != nil {
		return nil, err
	}
	leaf, err := leafFromDH(s, prekeyPriv, m.SetupKey)
	if err != nil {
		return nil, fmt.Errorf("%w: setup key", ErrInvalidMessage)
	}
	g := &Group{s: s, signer: signer, me: me, n: n, pub: m.Tree, sigKeys: m.SigKeys}
	if err := g.installPath(leaf); err != nil {
		return nil, err
	}
	g.stageKey = nextStageKey(s, nil, g.TreeKey(), data)
	return g, nil
}

// installPath sets this member's secrets from its leaf secret and the
// public tree, checking that the leaf matches the tree.
func (g *Group) installPath(leaf []byte) error {
	if !bytes.Equal(pubOf(leaf), g.pub[2*g.me]) {
		return fmt.Errorf("%w: leaf key does not match the tree", ErrInvalidMessage)
	}
	steps := pathOf(g.n, g.me)
	secs, _, err := pathSecrets(g.s, leaf, steps, func(x int) []byte { return g.pub[x] })
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	g.secrets = map[int][]byte{2 * g.me: leaf}
	for i, st := range steps {
		g.secrets[st.node] = secs[i+1]
	}
	return nil
}

// Staged is a change computed but not yet applied: Merge applies it. A
// sender gets one from Update, Add or Remove together with the message to
// send; a receiver gets one from Stage.
type Staged struct {
	Message []byte
	Welcome []byte // Add only: for the new member
	stage   uint64 // the stage it applies to
	n       int
	leaf    int
	sigKey  []byte // the leaf's new roster entry (empty when vacated)
	nodes   []int
	pubs    [][]byte
	secrets map[int][]byte // new secrets on this member's path
	removed bool
	treeKey []byte
}

// Merge applies a staged change. It fails if the group moved on since.
func (g *Group) Merge(st *Staged) error {
	if st.stage != g.stage {
		return ErrWrongStage
	}
	if st.n > g.n {
		for range st.n - g.n {
			g.sigKeys = append(g.sigKeys, nil)
		}
		g.pub = slices.Grow(g.pub, 2*(st.n-g.n))[:2*st.n-1]
		g.n = st.n
	}
	g.sigKeys[st.leaf] = st.sigKey
	for i, x := range st.nodes {
		g.pub[x] = st.pubs[i]
	}
	if st.removed {
		g.removed = true
		clear(g.secrets)
		g.stageKey = nil
		g.stage++
		return nil
	}
	for x, sec := range st.secrets {
		g.secrets[x] = sec
	}
	g.stageKey = nextStageKey(g.s, g.stageKey, st.treeKey, st.Message)
	g.stage++
	return nil
}

// Update replaces this member's leaf secret and path (the paper's
// Section 5.2).
func (g *Group) Update(rand io.Reader) (*Staged, error) {
	if g.removed {
		return nil, ErrRemoved
	}
	leaf, err := randomSecret(rand)
	if err != nil {
		return nil, err
	}
	return g.replacePath(KindUpdate, g.me, leaf, g.n, g.sigKeys[g.me], nil)
}

// Remove replaces the removed member's leaf with a secret this member
// chooses and then forgets: an update on its behalf. The slot stays, vacant.
func (g *Group) Remove(leaf int, rand io.Reader) (*Staged, error) {
	if g.removed {
		return nil, ErrRemoved
	}
	if leaf == g.me || !g.Member(leaf) {
		return nil, errors.New("art: can only remove another member")
	}
	sec, err := randomSecret(rand)
	if err != nil {
		return nil, err
	}
	return g.replacePath(KindRemove, leaf, sec, g.n, nil, nil)
}

// freeSlot is where an add puts the new member: the first vacant leaf, or
// a new rightmost one.
func (g *Group) freeSlot() int {
	for i, k := range g.sigKeys {
		if len(k) == 0 {
			return i
		}
	}
	return g.n
}

// Add puts a new member in the first vacant slot (or a new leaf), its leaf
// secret derived from a fresh ephemeral key and its prekey as in setup, and
// returns the update for the group and a Welcome for the new member.
func (g *Group) Add(p Prekey, rand io.Reader) (*Staged, error) {
	if g.removed {
		return nil, ErrRemoved
	}
	if len(p.SigKey) == 0 {
		return nil, errors.New("art: new member needs a signature key")
	}
	eph, err := randomSecret(rand)
	if err != nil {
		return nil, err
	}
	defer clear(eph)
	leafSec, err := leafFromDH(g.s, eph, p.Public)
	if err != nil {
		return nil, fmt.Errorf("art: new member's prekey: %w", err)
	}
	slot := g.freeSlot()
	n := max(g.n, slot+1)
	st, err := g.replacePath(KindAdd, slot, leafSec, n, p.SigKey, pubOf(eph))
	if err != nil {
		return nil, err
	}
	// The stage key before the add, sealed under a key only the new
	// member can derive from the same exchange.
	k, err := g.welcomeKey(eph, p.Public)
	if err != nil {
		return nil, err
	}
	sealed, err := g.s.Seal(k, make([]byte, 12), st.Message, g.stageKey)
	if err != nil {
		return nil, err
	}
	w := &welcome{SigKeys: g.sigKeys, Tree: g.pub, Sealed: sealed, Add: st.Message}
	if w.Signature, err = sign(g.signer, w.tbs()); err != nil {
		return nil, err
	}
	st.Welcome = w.marshal()
	return st, nil
}

func (g *Group) welcomeKey(priv, pub []byte) ([]byte, error) {
	shared, err := dh(nodeKey(priv), pub)
	if err != nil {
		return nil, err
	}
	return g.s.ExpandWithLabel(shared, labelWelcome, nil, 16), nil
}

// replacePath computes leaf's new path from its new secret, builds and
// signs the message. The sender keeps the secrets of the nodes on its own
// path and forgets the rest (for an add or remove, everything below the
// node where its path meets leaf's).
func (g *Group) replacePath(kind uint8, leaf int, leafSec []byte, n int, sigKey, eph []byte) (*Staged, error) {
	steps := pathOf(n, leaf)
	pubAt := func(x int) []byte {
		if x >= len(g.pub) {
			return nil
		}
		return g.pub[x]
	}
	secs, pubs, err := pathSecrets(g.s, leafSec, steps, pubAt)
	if err != nil {
		return nil, err
	}
	m := &message{Kind: kind, Stage: g.stage, Sender: uint32(g.me), Leaf: uint32(leaf), Leaves: uint32(n),
		Ephemeral: eph}
	if kind == KindAdd {
		m.SigKey = sigKey
	}
	st := &Staged{stage: g.stage, n: n, leaf: leaf, sigKey: sigKey, secrets: map[int][]byte{}}
	nodes := []int{2 * leaf}
	m.Path = pubs
	for i := 0; i+1 < len(steps); i++ {
		nodes = append(nodes, steps[i].node)
	}
	if m.Signature, err = sign(g.signer, m.tbs()); err != nil {
		return nil, err
	}
	st.Message = m.marshal()
	st.nodes, st.pubs = nodes, slices.Clone(m.Path)
	mine := map[int]bool{2 * g.me: true}
	for _, s := range pathOf(n, g.me) {
		mine[s.node] = true
	}
	if leaf == g.me {
		st.secrets[2*g.me] = leafSec
	}
	for i, s := range steps {
		if mine[s.node] {
			st.secrets[s.node] = secs[i+1]
		}
	}
	st.treeKey = secs[len(secs)-1]
	return st, nil
}

// Receive checks and computes a received update, add or remove without
// changing the group; Merge applies it. A member removed by the message
// gets a Staged that marks it removed, and ErrRemoved.
func (g *Group) Receive(data []byte) (*Staged, error) {
	if g.removed {
		return nil, ErrRemoved
	}
	m, err := parseMessage(data)
	if err != nil {
		return nil, err
	}
	if m.Stage != g.stage {
		return nil, ErrWrongStage
	}
	if !g.Member(int(m.Sender)) {
		return nil, ErrUnknownSender
	}
	leaf, n := int(m.Leaf), int(m.Leaves)
	switch m.Kind {
	case KindUpdate:
		if m.Leaf != m.Sender || n != g.n || len(m.Ephemeral)+len(m.SigKey) != 0 {
			return nil, fmt.Errorf("%w: update", ErrInvalidMessage)
		}
	case KindRemove:
		if m.Leaf == m.Sender || !g.Member(leaf) || n != g.n || len(m.Ephemeral)+len(m.SigKey) != 0 {
			return nil, fmt.Errorf("%w: remove", ErrInvalidMessage)
		}
	case KindAdd:
		if leaf != g.freeSlot() || n != max(g.n, leaf+1) || len(m.Ephemeral) != keySize || len(m.SigKey) == 0 {
			return nil, fmt.Errorf("%w: add", ErrInvalidMessage)
		}
	}
	if int(m.Sender) == g.me {
		return nil, fmt.Errorf("%w: own message (merge the Staged that made it)", ErrInvalidMessage)
	}
	steps := pathOf(n, leaf)
	if len(m.Path) != max(len(steps), 1) {
		return nil, fmt.Errorf("%w: path length", ErrInvalidMessage)
	}
	if err := verify(g.s, g.sigKeys[m.Sender], m.tbs(), m.Signature); err != nil {
		return nil, err
	}
	st := &Staged{Message: data, stage: g.stage, n: n, leaf: leaf, secrets: map[int][]byte{}}
	if m.Kind == KindUpdate {
		st.sigKey = g.sigKeys[leaf]
	} else {
		st.sigKey = m.SigKey
	}
	st.nodes = append(st.nodes, 2*leaf)
	for i := 0; i+1 < len(steps); i++ {
		st.nodes = append(st.nodes, steps[i].node)
	}
	st.pubs = slices.Clone(m.Path[:len(st.nodes)])
	if leaf == g.me {
		st.removed = true
		return st, ErrRemoved
	}
	// Find where leaf's path meets mine: there my own child's secret and
	// the message's key for the other child give the meeting node's
	// secret; above it, my secrets and the untouched copath continue.
	k := 0
	for ; k < len(steps); k++ {
		// Only nodes on my path have secrets here; node numbers of
		// subtrees that contain me stay on my path as the tree grows.
		if g.secrets[steps[k].sibling] != nil {
			break
		}
	}
	if k == len(steps) {
		return nil, fmt.Errorf("%w: paths do not meet", ErrInvalidMessage)
	}
	shared, err := dh(nodeKey(g.secrets[steps[k].sibling]), m.Path[k])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	cur := iota(g.s, shared)
	st.secrets[steps[k].node] = cur
	for _, s := range steps[k+1:] {
		if shared, err = dh(nodeKey(cur), g.pub[s.sibling]); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
		}
		cur = iota(g.s, shared)
		st.secrets[s.node] = cur
	}
	st.treeKey = cur
	return st, nil
}

// JoinWelcome joins from a Welcome as the member added by it, with the
// prekey the adder used and the adder's signature key.
func JoinWelcome(s *suite.Suite, signer suite.Signer, prekeyPriv, adderKey, data []byte) (*Group, error) {
	w, err := parseWelcome(data)
	if err != nil {
		return nil, err
	}
	if err := verify(s, adderKey, w.tbs(), w.Signature); err != nil {
		return nil, err
	}
	m, err := parseMessage(w.Add)
	if err != nil {
		return nil, err
	}
	if m.Kind != KindAdd || !bytes.Equal(m.SigKey, signer.PublicKey()) || int(m.Sender) >= len(w.SigKeys) ||
		!bytes.Equal(w.SigKeys[m.Sender], adderKey) || len(m.Ephemeral) != keySize {
		return nil, fmt.Errorf("%w: welcome's add", ErrInvalidMessage)
	}
	g := &Group{s: s, signer: signer, n: len(w.SigKeys), pub: w.Tree, sigKeys: w.SigKeys, stage: m.Stage}
	leaf := int(m.Leaf)
	if leaf != g.freeSlot() || int(m.Leaves) != max(g.n, leaf+1) {
		return nil, fmt.Errorf("%w: welcome's add slot", ErrInvalidMessage)
	}
	steps := pathOf(int(m.Leaves), leaf)
	if len(m.Path) != max(len(steps), 1) {
		return nil, fmt.Errorf("%w: path length", ErrInvalidMessage)
	}
	if err := verify(s, adderKey, m.tbs(), m.Signature); err != nil {
		return nil, err
	}
	leafSec, err := leafFromDH(s, prekeyPriv, m.Ephemeral)
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral key", ErrInvalidMessage)
	}
	k, err := g.welcomeKey(prekeyPriv, m.Ephemeral)
	if err != nil {
		return nil, err
	}
	prevStage, err := s.Open(k, make([]byte, 12), w.Add, w.Sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed stage key", ErrInvalidMessage)
	}
	// Apply the add's public keys, then take the leaf.
	for range int(m.Leaves) - g.n {
		g.sigKeys = append(g.sigKeys, nil)
	}
	g.n = int(m.Leaves)
	g.pub = slices.Grow(g.pub, 2*g.n-1-len(g.pub))[:2*g.n-1]
	g.pub[2*leaf] = m.Path[0]
	for i := 0; i+1 < len(steps); i++ {
		g.pub[steps[i].node] = m.Path[i+1]
	}
	g.me = leaf
	g.sigKeys[leaf] = m.SigKey
	if err := g.installPath(leafSec); err != nil {
		return nil, err
	}
	g.stageKey = nextStageKey(s, prevStage, g.TreeKey(), w.Add)
	g.stage = m.Stage + 1
	return g, nil
}
