package ratchettree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/par"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// Labels (RFC 9420, Sections 7.4, 7.6 and 7.2).
const (
	labelPath           = "path"
	labelNode           = "node"
	labelUpdatePathNode = "UpdatePathNode"
	labelLeafNodeTBS    = "LeafNodeTBS"
)

// PrivateState is one member's private view of the tree (RFC 9420, Section
// 4.2): its leaf and the HPKE private keys it knows for nodes on its direct
// path. Keys are dropped as soon as the tree replaces the nodes they belong
// to. It never prints its keys.
type PrivateState struct {
	leaf LeafIndex
	keys map[NodeIndex]keyPair
}

type keyPair struct{ priv, pub []byte }

// NewPrivateState starts the private state of the member at leaf l of t
// whose leaf encryption private key is encPriv. It checks that the key
// matches the leaf's public key.
func NewPrivateState(t *Tree, l LeafIndex, encPriv []byte) (*PrivateState, error) {
	leaf := t.Leaf(l)
	if leaf == nil {
		return nil, fail(ErrInvalidTree, "4.2", "leaf %d is blank", l)
	}
	pub, err := t.suite.KEMPublicKey(encPriv)
	if err != nil {
		return nil, fmt.Errorf("mls: leaf private key: %w", err)
	}
	if !bytes.Equal(pub, leaf.EncryptionKey) {
		return nil, fail(ErrNoPrivateKey, "4.2", "private key does not match leaf %d", l)
	}
	// Keep our own copy: the caller may erase its key (a KeyPackage bundle
	// is erased once its Welcome is processed).
	return &PrivateState{leaf: l, keys: map[NodeIndex]keyPair{l.Node(): {bytes.Clone(encPriv), pub}}}, nil
}

// Leaf returns the member's leaf index.
func (p *PrivateState) Leaf() LeafIndex { return p.leaf }

// PrivateKey returns the HPKE private key held for node x.
func (p *PrivateState) PrivateKey(x NodeIndex) ([]byte, bool) {
	k, ok := p.keys[x]
	return k.priv, ok
}

// Nodes returns the nodes whose private keys the state holds, sorted.
func (p *PrivateState) Nodes() []NodeIndex {
	out := make([]NodeIndex, 0, len(p.keys))
	for x := range p.keys {
		out = append(out, x)
	}
	slices.Sort(out)
	return out
}

// Clone returns a copy sharing no map with p.
func (p *PrivateState) Clone() *PrivateState {
	c := &PrivateState{leaf: p.leaf, keys: make(map[NodeIndex]keyPair, len(p.keys))}
	for x, k := range p.keys {
		c.keys[x] = k
	}
	return c
}

// EraseExcept zeroes every private key p holds that keep does not share:
// the keys a staged epoch derived, when that epoch is dropped (RFC 9420,
// Section 9.2). Keys p shares with keep (Clone shares them) are left alone.
func (p *PrivateState) EraseExcept(keep *PrivateState) {
	for x, k := range p.keys {
		if keep != nil {
			if kk, ok := keep.keys[x]; ok && sameBytes(kk.priv, k.priv) {
				continue
			}
		}
		clear(k.priv)
	}
}

// ObservePathSecret, when set, is called with each path secret and commit
// secret this package derives or is given, for tests that check they are
// erased once used (RFC 9420, Section 9.2). It must be nil otherwise.
var ObservePathSecret func(s []byte)

func observePathSecret(s []byte) {
	if ObservePathSecret != nil && len(s) > 0 {
		ObservePathSecret(s)
	}
}

// sameBytes reports whether a and b share their first byte's storage.
func sameBytes(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

// String describes the state without its keys.
func (p *PrivateState) String() string {
	return fmt.Sprintf("ratchettree.PrivateState{leaf %d, %d keys}", p.leaf, len(p.keys))
}

// GoString is String, so %#v does not print keys either.
func (p *PrivateState) GoString() string { return p.String() }

// SetPathSecret sets the private key of node x from its path secret
// (RFC 9420, Section 7.4), checking it against the public key in t.
func (p *PrivateState) SetPathSecret(t *Tree, x NodeIndex, pathSecret []byte) error {
	priv, pub, err := nodeKey(t.suite, pathSecret)
	if err != nil {
		return err
	}
	if want := t.EncryptionKey(x); want == nil || !bytes.Equal(pub, want) {
		return fail(ErrInvalidPath, "7.4", "path secret does not match node %d", x)
	}
	p.keys[x] = keyPair{priv, pub}
	return nil
}

// ImportPathSecret installs the path secret a joiner receives in a Welcome
// for node x (the lowest common ancestor of its leaf and the committer's),
// then derives the path secret of each non-blank ancestor of x in turn,
// checking every derived key against t (RFC 9420, Section 12.4.3.1). It
// returns the commit secret, derived from the last path secret. The node
// keys are derived together (nodeKeys), as a committer's and a receiver's
// are, and checked from x up: the first mismatch is the error.
func (p *PrivateState) ImportPathSecret(t *Tree, x NodeIndex, pathSecret []byte) ([]byte, error) {
	if !treemath.InSubtree(p.leaf.Node(), x) || x == p.leaf.Node() {
		return nil, fail(ErrInvalidPath, "12.4.3.1", "node %d is not above leaf %d", x, p.leaf)
	}
	if t.Node(x) == nil {
		return nil, fail(ErrInvalidPath, "12.4.3.1", "node %d is blank", x)
	}
	var nodes []NodeIndex
	for y, ok := x, true; ok; y, ok = treemath.Parent(y, t.n) {
		if t.Node(y) != nil {
			nodes = append(nodes, y)
		}
	}
	// chain[0] is the caller's (it erases it); by RFC 9420, Section 9.2
	// the path secrets derived between it and the commit secret are erased
	// once their keys are derived.
	chain := pathChain(t.suite, pathSecret, len(nodes))
	commitSecret := chain[len(nodes)]
	privs, pubs, err := nodeKeys(t.suite, chain[:len(nodes)])
	for _, c := range chain[1:len(nodes)] {
		clear(c)
	}
	if err != nil {
		clear(commitSecret)
		return nil, err
	}
	for i, y := range nodes {
		if want := t.EncryptionKey(y); want == nil || !bytes.Equal(pubs[i], want) {
			for _, k := range privs {
				clear(k)
			}
			clear(commitSecret)
			return nil, fail(ErrInvalidPath, "7.4", "path secret does not match node %d", y)
		}
	}
	c := p.Clone()
	for i, y := range nodes {
		c.keys[y] = keyPair{privs[i], pubs[i]}
	}
	observePathSecret(commitSecret)
	*p = *c
	return commitSecret, nil
}

// Consistent checks that every key the state holds belongs to a non-blank
// node of t with the matching public key.
func (p *PrivateState) Consistent(t *Tree) error {
	for x, k := range p.keys {
		if want := t.EncryptionKey(x); want == nil || !bytes.Equal(want, k.pub) {
			return fail(ErrNoPrivateKey, "4.2", "private key for node %d does not match the tree", x)
		}
	}
	return nil
}

// Prune drops the keys of nodes that t has blanked or replaced (RFC 9420,
// Section 7.5: outdated key pairs are deleted).
func (p *PrivateState) Prune(t *Tree) {
	for x, k := range p.keys {
		if want := t.EncryptionKey(x); want == nil || !bytes.Equal(want, k.pub) {
			delete(p.keys, x)
		}
	}
}

func nodeKey(s *suite.Suite, pathSecret []byte) (priv, pub []byte, err error) {
	ns := s.DeriveSecret(pathSecret, labelNode)
	defer clear(ns)
	priv, pub, err = s.DeriveKeyPair(ns)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: deriving node key: %w", err)
	}
	return priv, pub, nil
}

// nodeKeys is nodeKey of each of pathSecrets, the public keys computed
// together (suite.DeriveKeyPairs).
func nodeKeys(s *suite.Suite, pathSecrets [][]byte) (privs, pubs [][]byte, err error) {
	ns := make([][]byte, len(pathSecrets))
	for i, ps := range pathSecrets {
		ns[i] = s.DeriveSecret(ps, labelNode)
	}
	defer func() {
		for _, n := range ns {
			clear(n)
		}
	}()
	privs, pubs, err = s.DeriveKeyPairs(ns)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: deriving node key: %w", err)
	}
	return privs, pubs, nil
}

// pathChain returns first and the n path secrets derived from it in turn
// (RFC 9420, Section 7.4: path_secret[i+1] = DeriveSecret(path_secret[i],
// "path")): the secrets of n path nodes, then the commit secret. Each is
// shown to observePathSecret as it is used; the caller erases them.
func pathChain(s *suite.Suite, first []byte, n int) [][]byte {
	chain := make([][]byte, 1, n+1)
	chain[0] = first
	for range n {
		ps := chain[len(chain)-1]
		observePathSecret(ps)
		chain = append(chain, s.DeriveSecret(ps, labelPath))
	}
	return chain
}

// PathParams are the inputs to CreateUpdatePath.
type PathParams struct {
	// Sender is the committer's leaf. For an external commit it is the
	// leaf FreeLeaf returns; the tree is extended if needed.
	Sender LeafIndex
	// Leaf supplies the committer's new LeafNode: its signature key,
	// credential, capabilities and extensions are kept; encryption key,
	// source, parent hash and signature are filled in.
	Leaf *wire.LeafNode
	// Signer signs the new LeafNode.
	Signer suite.Signer
	// GroupContext is the provisional group context (RFC 9420, Section
	// 12.4.1); its TreeHash is replaced by the new tree's hash.
	GroupContext *wire.GroupContext
	// Joiners are the leaves added by the same commit; they get no
	// ciphertexts (RFC 9420, Section 12.4.2).
	Joiners []LeafIndex
	// Rand supplies the leaf key and the first path secret.
	Rand io.Reader
}

// CreatedPath is the outcome of CreateUpdatePath.
type CreatedPath struct {
	Path         *wire.UpdatePath
	CommitSecret []byte
	// TreeHash is the tree hash placed in the provisional group context.
	TreeHash []byte
	// Private is the committer's new private state.
	Private *PrivateState
	secrets map[NodeIndex][]byte
}

// Erase zeroes the path secrets and the commit secret, once the Welcome
// and the key schedule have used them (RFC 9420, Section 9.2).
func (c *CreatedPath) Erase() {
	for _, s := range c.secrets {
		clear(s)
	}
	clear(c.CommitSecret)
}

// PathSecretFor returns the path secret a joiner at leaf j receives in the
// Welcome: that of the lowest common ancestor of the committer's leaf and j
// (RFC 9420, Section 12.4.3.1). It is nil if that node got no path secret.
func (c *CreatedPath) PathSecretFor(sender, j LeafIndex) (NodeIndex, []byte) {
	a := treemath.CommonAncestor(sender.Node(), j.Node())
	return a, c.secrets[a]
}

// CreateUpdatePath refreshes the committer's direct path (RFC 9420,
// Sections 7.4, 7.5 and 12.4.1): a fresh leaf key, path secrets and node
// keys along the filtered direct path, parent hashes set, the LeafNode
// re-signed, and each path secret encrypted to the resolution of the
// matching copath node without the joiners. It applies the path to t. On
// error t is unchanged.
func (t *Tree) CreateUpdatePath(p *PathParams) (*CreatedPath, error) {
	if p.Leaf == nil || p.Signer == nil || p.GroupContext == nil || p.Rand == nil {
		return nil, errors.New("mls: ratchettree: incomplete PathParams")
	}
	s := t.suite
	w := t.Clone()
	sender := p.Sender
	if uint32(sender) >= maxLeaves {
		return nil, errors.New("mls: ratchettree: sender leaf out of range")
	}
	w.grow(uint32(sender) + 1)
	ex, err := w.joinerSet(p.Joiners, sender)
	if err != nil {
		return nil, err
	}
	steps := w.filteredPath(sender)

	leafPriv, leafPub, err := s.GenerateKEMKey(p.Rand)
	if err != nil {
		return nil, err
	}
	ps := make([]byte, s.HashSize())
	if _, err := io.ReadFull(p.Rand, ps); err != nil {
		return nil, fmt.Errorf("mls: reading path secret: %w", err)
	}
	priv := &PrivateState{leaf: sender, keys: map[NodeIndex]keyPair{sender.Node(): {leafPriv, leafPub}}}
	secrets := make(map[NodeIndex][]byte, len(steps))
	done := false
	defer func() {
		if !done { // RFC 9420, Section 9.2: nothing of a failed path survives
			(&CreatedPath{secrets: secrets}).Erase()
			priv.EraseExcept(nil)
			clear(ps)
		}
	}()
	// The path secrets up the filtered path, then their node keys
	// together (RFC 9420, Section 7.4).
	chain := pathChain(s, ps, len(steps))
	for i, st := range steps {
		secrets[st.parent] = chain[i]
	}
	ps = chain[len(steps)] // erased with the rest on failure
	privs, pubs, err := nodeKeys(s, chain[:len(steps)])
	if err != nil {
		return nil, err
	}
	for i, st := range steps {
		priv.keys[st.parent] = keyPair{privs[i], pubs[i]}
	}
	commitSecret := ps
	observePathSecret(commitSecret)

	// RFC 9420, Section 7.5: blank the direct path, set the filtered
	// nodes, and chain parent hashes from the root down (Section 7.9).
	ph := w.mergePath(sender, steps, pubs)

	leaf := *p.Leaf
	leaf.EncryptionKey = leafPub
	leaf.LeafNodeSource = wire.LeafNodeSourceCommit
	leaf.Lifetime = wire.Lifetime{}
	leaf.ParentHash = ph
	leaf.Signature = nil
	tbs := leaf.TBS(p.GroupContext.GroupID, uint32(sender))
	if tbs == nil {
		return nil, errors.New("mls: ratchettree: leaf node cannot be encoded")
	}
	if leaf.Signature, err = p.Signer.SignWithLabel(labelLeafNodeTBS, tbs); err != nil {
		return nil, fmt.Errorf("mls: signing leaf node: %w", err)
	}
	enc, err := codec.Marshal(&leaf)
	if err != nil {
		return nil, err
	}
	final, err := wire.Decode[wire.LeafNode](enc) // keeps the encoding for hashing
	if err != nil {
		return nil, err
	}
	if _, ok := w.enc.get(final.EncryptionKey); ok {
		return nil, fail(ErrDuplicateKey, "7.3", "fresh leaf key already in the tree")
	}
	w.write(sender.Node(), &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: final})

	ctx := *p.GroupContext
	ctx.TreeHash = w.TreeHash()
	ctxBytes, err := codec.Marshal(&ctx)
	if err != nil {
		return nil, err
	}
	// One HPKE encryption per resolution entry of each copath node: on a
	// sparse tree that is one per member, nearly all of a commit's cost, so
	// they run in parallel (par.ForEach keeps the serial order of results and
	// errors). The tree is read here, serially, not by the workers.
	type job struct {
		to          NodeIndex
		pub, secret []byte
		out         *wire.HPKECiphertext
	}
	var jobs []job
	nodes := make([]wire.UpdatePathNode, len(steps))
	for i, st := range steps {
		res := w.resolve(st.copath, ex, nil)
		cts := make([]wire.HPKECiphertext, len(res))
		for j, r := range res {
			jobs = append(jobs, job{to: r, pub: w.EncryptionKey(r), secret: secrets[st.parent], out: &cts[j]})
		}
		nodes[i] = wire.UpdatePathNode{EncryptionKey: pubs[i]}
		nodes[i].SetSecrets(cts)
	}
	err = par.ForEach(len(jobs), par.RandIsDefault(), func(i int) error {
		jb := &jobs[i]
		kem, ct, err := s.EncryptWithLabel(jb.pub, labelUpdatePathNode, ctxBytes, jb.secret)
		if err != nil {
			return fmt.Errorf("mls: encrypting path secret to node %d: %w", jb.to, err)
		}
		*jb.out = wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	*t = *w
	done = true
	return &CreatedPath{
		Path:         &wire.UpdatePath{LeafNode: *final, Nodes: nodes},
		CommitSecret: commitSecret,
		TreeHash:     ctx.TreeHash,
		Private:      priv,
		secrets:      secrets,
	}, nil
}

// mergePath blanks the direct path of sender, sets the filtered direct path
// nodes to pubs with their parent hashes, and returns the parent hash the
// sender's LeafNode must carry (RFC 9420, Sections 7.5 and 7.9). Each
// original sibling tree hash is the copath child's current tree hash, since
// the nodes set here have no unmerged leaves.
func (t *Tree) mergePath(sender LeafIndex, steps []pathStep, pubs [][]byte) []byte {
	t.blankDirectPath(sender)
	var ph []byte
	for i := len(steps) - 1; i >= 0; i-- {
		pn := &wire.ParentNode{EncryptionKey: pubs[i], ParentHash: ph}
		// The copath child's subtree is untouched by the puts on the
		// direct path: its hash needs no refreshed summaries above it.
		ph = t.parentHash(pubs[i], pn.ParentHash, t.hashOf(steps[i].copath))
		t.put(steps[i].parent, &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: pn})
	}
	t.st.refreshAbove(sender.Node())
	if ph == nil {
		ph = []byte{}
	}
	return ph
}

// joinerSet checks the joiners (non-blank leaves other than the sender) and
// returns them as a sorted set.
func (t *Tree) joinerSet(joiners []LeafIndex, sender LeafIndex) ([]uint32, error) {
	ex := make([]uint32, 0, len(joiners))
	for _, j := range joiners {
		if j == sender || t.Leaf(j) == nil {
			return nil, fail(ErrInvalidPath, "12.4.2", "joiner %d is not a new member", j)
		}
		ex = append(ex, uint32(j))
	}
	slices.Sort(ex)
	return slices.Compact(ex), nil
}

// ReceivedPath is the outcome of ApplyUpdatePath for a member.
type ReceivedPath struct {
	// PathSecret is the path secret the member decrypted.
	PathSecret []byte
	// CommitSecret is derived from the last path secret (RFC 9420,
	// Section 12.4.2).
	CommitSecret []byte
	// Private is the member's new private state.
	Private *PrivateState
}

// Erase zeroes the path secret and the commit secret, once the key
// schedule has used them (RFC 9420, Section 9.2).
func (r *ReceivedPath) Erase() {
	clear(r.PathSecret)
	clear(r.CommitSecret)
}

// ApplyUpdatePath processes the UpdatePath of a commit from leaf sender
// (RFC 9420, Sections 7.5, 7.6, 7.9.2 and 12.4.2) on the tree with the
// commit's proposals applied: it validates the new LeafNode (source commit,
// signed over ctx.GroupID and sender) and the path's shape and keys, merges
// the path, and checks the recomputed parent hash against the LeafNode's.
//
// If me is non-nil it also decrypts the one path secret meant for me,
// derives the rest, checks each derived public key against the path, and
// returns the new private state with the keys of every replaced node
// dropped. It locates its ciphertext by walking one path down the copath
// node, so processing costs O(log n) hashes and key derivations on a full
// tree. With me nil (a public view of the group) it returns nil, nil.
//
// ctx is the provisional group context; its TreeHash is replaced by the new
// tree's. p.GroupID is ignored in favour of ctx.GroupID. On error t is
// unchanged.
func (t *Tree) ApplyUpdatePath(sender LeafIndex, path *wire.UpdatePath, joiners []LeafIndex,
	ctx *wire.GroupContext, me *PrivateState, p *Policy) (*ReceivedPath, error) {
	if path == nil || ctx == nil || p == nil {
		return nil, errors.New("mls: ratchettree: nil argument")
	}
	if uint32(sender) >= maxLeaves {
		return nil, fail(ErrInvalidPath, "12.4.2", "sender leaf out of range")
	}
	if me != nil && me.leaf == sender {
		return nil, errors.New("mls: ratchettree: cannot process own UpdatePath")
	}
	s := t.suite
	w := t.Clone()
	w.grow(uint32(sender) + 1)
	ex, err := w.joinerSet(joiners, sender)
	if err != nil {
		return nil, err
	}
	pol := *p
	pol.GroupID = ctx.GroupID
	leaf := path.LeafNode
	// Section 7.3's checks of the new LeafNode but its signature, which is
	// verified on another core while the path is checked, merged and
	// decrypted: a verification is a fifth of a receiver's work. It reads
	// only leaf, which nothing modifies, and its failure is reported before
	// any later check's, as the checks in order would; a path decrypted
	// meanwhile is erased.
	if err := w.validateLeafNode(&leaf, wire.LeafNodeSourceCommit, sender, &pol, false); err != nil {
		return nil, err
	}
	sig := make(chan error, 1)
	if runtime.GOMAXPROCS(0) == 1 {
		// Nothing to overlap: in order, a bad signature costs no
		// decryption.
		if err := verifyLeafSignature(s, &leaf, pol.GroupID, sender); err != nil {
			return nil, err
		}
		sig <- nil
	} else {
		go func() { sig <- verifyLeafSignature(s, &leaf, pol.GroupID, sender) }()
	}
	rp, err := w.applyPath(sender, &leaf, path, ex, ctx, me)
	if serr := <-sig; serr != nil {
		if rp != nil {
			rp.Erase()
			rp.Private.EraseExcept(me)
		}
		return nil, serr
	}
	if err != nil {
		return nil, err
	}
	*t = *w
	return rp, nil
}

// applyPath is ApplyUpdatePath on its working copy w after the LeafNode's
// checks: the path's shape and keys, the merge, the parent hash, and, for
// a receiver, the decryption.
func (w *Tree) applyPath(sender LeafIndex, leaf *wire.LeafNode, path *wire.UpdatePath, ex []uint32,
	ctx *wire.GroupContext, me *PrivateState) (*ReceivedPath, error) {
	s := w.suite
	steps := w.filteredPath(sender)
	if len(path.Nodes) != len(steps) {
		return nil, fail(ErrInvalidPath, "7.6", "%d path nodes for a filtered direct path of %d", len(path.Nodes), len(steps))
	}
	pubs := make([][]byte, len(steps))
	for i, st := range steps {
		n := path.Nodes[i]
		want := int(w.st.get(st.copath).resolution) - countIn(ex, st.copath)
		if n.Secrets() != want {
			return nil, fail(ErrInvalidPath, "7.6", "path node %d: %d ciphertexts for a resolution of %d", i, n.Secrets(), want)
		}
		if err := s.ValidateKEMPublicKey(n.EncryptionKey); err != nil {
			return nil, failCause(ErrInvalidPath, err, "7.6", "path node %d key", i)
		}
		// RFC 9420, Section 12.4.2: no public key of the path may
		// already be in the tree, nor repeat within the path.
		if _, ok := w.enc.get(n.EncryptionKey); ok || bytes.Equal(n.EncryptionKey, leaf.EncryptionKey) {
			return nil, fail(ErrDuplicateKey, "12.4.2", "path node %d key already in use", i)
		}
		for _, q := range pubs[:i] {
			if bytes.Equal(q, n.EncryptionKey) {
				return nil, fail(ErrDuplicateKey, "12.4.2", "path node %d key repeated", i)
			}
		}
		pubs[i] = n.EncryptionKey
	}
	// The tree keeps the path's keys and leaf for as long as they stand,
	// so they are copied out of the commit, which would otherwise be kept
	// whole with them (see wire.LeafNode.Detached).
	detachAll(pubs)
	leaf = leaf.Detached()

	ph := w.mergePath(sender, steps, pubs)
	if !bytes.Equal(ph, leaf.ParentHash) {
		return nil, fail(ErrInvalidParentHash, "7.9.2", "committer's leaf parent hash does not match its path")
	}
	w.write(sender.Node(), &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: leaf})
	if me == nil {
		return nil, nil
	}
	return w.decryptPath(sender, steps, path, ex, ctx, me)
}

// detachAll replaces each of bs with a copy. Each gets an allocation of
// its own: later commits replace a path's upper nodes first, and one
// buffer for the path would live as long as its last key.
func detachAll(bs [][]byte) {
	for i, b := range bs {
		bs[i] = bytes.Clone(b)
	}
}

func (t *Tree) decryptPath(sender LeafIndex, steps []pathStep, path *wire.UpdatePath, ex []uint32,
	ctx *wire.GroupContext, me *PrivateState) (*ReceivedPath, error) {
	s := t.suite
	if t.Leaf(me.leaf) == nil || contains(ex, uint32(me.leaf)) {
		return nil, fail(ErrInvalidPath, "12.4.2", "receiver leaf %d is not an existing member", me.leaf)
	}
	lca := treemath.CommonAncestor(sender.Node(), me.leaf.Node())
	i := slices.IndexFunc(steps, func(st pathStep) bool { return st.parent == lca })
	if i < 0 {
		return nil, fail(ErrInvalidPath, "7.6", "common ancestor %d not on the filtered direct path", lca)
	}
	pos, holder, ok := t.resolutionPosition(steps[i].copath, me.leaf, ex)
	var ct wire.HPKECiphertext
	if ok {
		ct, ok = path.Nodes[i].Secret(pos)
	}
	if !ok {
		return nil, fail(ErrInvalidPath, "7.6", "receiver not in the resolution of node %d", steps[i].copath)
	}
	kp, ok := me.keys[holder]
	if !ok || !bytes.Equal(kp.pub, t.EncryptionKey(holder)) {
		return nil, fail(ErrNoPrivateKey, "7.6", "no private key for node %d", holder)
	}
	c := *ctx
	c.TreeHash = t.TreeHash()
	ctxBytes, err := codec.Marshal(&c)
	if err != nil {
		return nil, err
	}
	first, err := s.DecryptWithLabel(kp.priv, labelUpdatePathNode, ctxBytes, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		return nil, failCause(ErrInvalidPath, err, "12.4.2", "decrypting path secret")
	}
	next := me.Clone()
	// The committer's direct path was replaced: drop every key held for it.
	for _, x := range treemath.DirectPath(sender.Node(), t.n) {
		delete(next.keys, x)
	}
	// The path secrets from the common ancestor up, then their node keys
	// together (RFC 9420, Section 7.4), each checked against the path. By
	// RFC 9420, Section 9.2 the path secrets between first and the commit
	// secret are erased once their keys are derived; first and the commit
	// secret go back to the caller (ReceivedPath.Erase).
	chain := pathChain(s, first, len(steps)-i)
	ps := chain[len(chain)-1]
	privs, pubs, err := nodeKeys(s, chain[:len(chain)-1])
	for _, c := range chain[1 : len(chain)-1] {
		clear(c)
	}
	if err != nil {
		clear(first)
		clear(ps)
		return nil, err
	}
	for j := range privs {
		if !bytes.Equal(pubs[j], path.Nodes[i+j].EncryptionKey) {
			for _, p := range privs {
				clear(p)
			}
			clear(first)
			clear(ps)
			return nil, fail(ErrInvalidPath, "12.4.2", "derived key of path node %d does not match", i+j)
		}
		next.keys[steps[i+j].parent] = keyPair{privs[j], pubs[j]}
	}
	next.Prune(t)
	observePathSecret(ps)
	return &ReceivedPath{PathSecret: first, CommitSecret: ps, Private: next}, nil
}
