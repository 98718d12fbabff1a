package ratchettree

import (
	"bytes"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mlskit/mlskit/internal/par"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// CredentialValidator is implemented by the application to decide whether a
// credential is acceptable and binds the given signature key (RFC 9420,
// Section 5.3.1). It must return a non-nil error to reject; the error is
// wrapped (with ErrCredential) and returned to the caller, so it may carry
// the application's reason but must not carry secrets.
type CredentialValidator interface {
	Validate(cred wire.Credential, signaturePublicKey []byte) error
}

// Policy is what a LeafNode is checked against besides the tree itself
// (RFC 9420, Section 7.3).
type Policy struct {
	// GroupID is signed by leaves with source update or commit.
	GroupID []byte
	// Required is the group's required_capabilities extension, if any.
	Required *wire.RequiredCapabilities
	// Credentials validates each credential. It must be set.
	Credentials CredentialValidator
	// Now is the current time for lifetime checks of key_package leaves.
	// The zero time skips the check (allowed for received leaves only).
	Now time.Time
	// MaxLifetime, if positive, is the longest not_after - not_before the
	// application accepts (RFC 9420, Section 7.2).
	MaxLifetime time.Duration
}

var errNoValidator = errors.New("mls: ratchettree: Policy.Credentials is nil")

// Default proposal and extension types, which members support without
// listing them (RFC 9420, Section 7.2).
func defaultExtension(e wire.ExtensionType) bool { return e >= 1 && e <= 5 }
func defaultProposal(p wire.ProposalType) bool   { return p >= 1 && p <= 7 }

// ValidateLeafNode checks a LeafNode about to enter the tree (RFC 9420,
// Section 7.3): in a KeyPackage for an Add (source key_package), an Update
// proposal from leaf at (source update), or the UpdatePath of a commit from
// leaf at (source commit). For key_package, at is ignored. The uniqueness
// rules are checked against the tree as it is now, so apply Removes before
// validating Adds, as Section 12.3 orders them.
func (t *Tree) ValidateLeafNode(leaf *wire.LeafNode, source wire.LeafNodeSource, at LeafIndex, p *Policy) error {
	return t.validateLeafNode(leaf, source, at, p, true)
}

// ValidateKeyPackageLeaf is ValidateLeafNode for the LeafNode of a
// KeyPackage whose signatures the caller has verified (RFC 9420, Section
// 10.1 verifies the LeafNode's signature with the KeyPackage's): every check
// but that signature, which would be the third verification of it for a
// committed Add (parse, proposal validation, applying the commit).
func (t *Tree) ValidateKeyPackageLeaf(leaf *wire.LeafNode, p *Policy) error {
	return t.validateLeafNode(leaf, wire.LeafNodeSourceKeyPackage, 0, p, false)
}

func (t *Tree) validateLeafNode(leaf *wire.LeafNode, source wire.LeafNodeSource, at LeafIndex, p *Policy, verify bool) error {
	if leaf.LeafNodeSource != source {
		return fail(ErrInvalidLeafNode, "7.3", "leaf_node_source is %d, want %d", leaf.LeafNodeSource, source)
	}
	replaced := LeafIndex(^uint32(0))
	if source != wire.LeafNodeSourceKeyPackage && t.Leaf(at) != nil {
		replaced = at
	}
	// Uniqueness (Section 7.3). The encryption key must be new, which
	// also makes it differ from the key of the leaf it replaces.
	if _, ok := t.enc.get(leaf.EncryptionKey); ok {
		return fail(ErrDuplicateKey, "7.3", "encryption key already in the tree")
	}
	if u, ok := t.sig.get(leaf.SignatureKey); ok && u.node != replaced.Node() {
		return fail(ErrDuplicateKey, "7.3", "signature key already in the tree")
	}
	if !verify {
		return t.checkLeafPolicy(leaf, at, replaced, p)
	}
	return t.checkLeaf(leaf, at, replaced, p)
}

// checkLeaf runs the checks of Section 7.3 other than the source and
// uniqueness: key format, capabilities, credential types in use, lifetime,
// credential, signature. replaced is the leaf whose current LeafNode does
// not count as another member's (the one being replaced or checked).
func (t *Tree) checkLeaf(leaf *wire.LeafNode, at, replaced LeafIndex, p *Policy) error {
	if err := t.checkLeafPolicy(leaf, at, replaced, p); err != nil {
		return err
	}
	return t.verifyLeafSignature(leaf, p.GroupID, at)
}

// checkLeafPolicy is checkLeaf without the signature.
func (t *Tree) checkLeafPolicy(leaf *wire.LeafNode, at, replaced LeafIndex, p *Policy) error {
	if p == nil || p.Credentials == nil {
		return errNoValidator
	}
	if err := t.suite.ValidateKEMPublicKey(leaf.EncryptionKey); err != nil {
		return failCause(ErrInvalidLeafNode, err, "7.3", "encryption key")
	}
	caps := &leaf.Capabilities
	// Section 7.3 does not ask that capabilities list the group's version
	// and cipher suite, and deployed implementations omit the suite (see
	// the treekem vectors of suite 7), so neither is checked here.
	if !slices.Contains(caps.Credentials, leaf.Credential.CredentialType) {
		return fail(ErrInvalidLeafNode, "7.2", "capabilities lack the leaf's own credential type")
	}
	for _, e := range leaf.Extensions {
		if !defaultExtension(e.ExtensionType) && !slices.Contains(caps.Extensions, e.ExtensionType) {
			return fail(ErrInvalidLeafNode, "7.3", "extension %d not in capabilities", e.ExtensionType)
		}
	}
	if r := p.Required; r != nil {
		for _, e := range r.ExtensionTypes {
			if !defaultExtension(e) && !slices.Contains(caps.Extensions, e) {
				return fail(ErrInvalidLeafNode, "7.3", "required extension %d not supported", e)
			}
		}
		for _, pt := range r.ProposalTypes {
			if !defaultProposal(pt) && !slices.Contains(caps.Proposals, pt) {
				return fail(ErrInvalidLeafNode, "7.3", "required proposal %d not supported", pt)
			}
		}
		for _, c := range r.CredentialTypes {
			if !slices.Contains(caps.Credentials, c) {
				return fail(ErrInvalidLeafNode, "7.3", "required credential type %d not supported", c)
			}
		}
	}
	if err := t.checkCredentialTypes(leaf, replaced); err != nil {
		return err
	}
	if leaf.LeafNodeSource == wire.LeafNodeSourceKeyPackage {
		lt := leaf.Lifetime
		if lt.NotBefore > lt.NotAfter {
			return fail(ErrInvalidLeafNode, "7.3", "lifetime ends before it starts")
		}
		if p.MaxLifetime > 0 && lt.NotAfter-lt.NotBefore > uint64(p.MaxLifetime/time.Second) {
			return fail(ErrInvalidLeafNode, "7.2", "lifetime longer than the maximum")
		}
		if !p.Now.IsZero() {
			now := p.Now.Unix()
			if now < 0 || uint64(now) < lt.NotBefore || uint64(now) > lt.NotAfter {
				return fail(ErrInvalidLeafNode, "7.3", "outside lifetime")
			}
		}
	}
	if err := p.Credentials.Validate(leaf.Credential, leaf.SignatureKey); err != nil {
		return failCause(ErrCredential, err, "5.3.1", "credential")
	}
	return nil
}

// verifyLeafSignature checks SignWithLabel(., "LeafNodeTBS", LeafNodeTBS)
// (RFC 9420, Section 7.2).
func (t *Tree) verifyLeafSignature(leaf *wire.LeafNode, groupID []byte, at LeafIndex) error {
	return verifyLeafSignature(t.suite, leaf, groupID, at)
}

func verifyLeafSignature(s *suite.Suite, leaf *wire.LeafNode, groupID []byte, at LeafIndex) error {
	tbs := leaf.TBS(groupID, uint32(at))
	if tbs == nil {
		return fail(ErrInvalidLeafNode, "7.2", "leaf node cannot be encoded")
	}
	if err := s.VerifyWithLabel(leaf.SignatureKey, "LeafNodeTBS", tbs, leaf.Signature); err != nil {
		return failCause(ErrInvalidSignature, err, "7.3", "leaf %d signature", at)
	}
	return nil
}

// VerifyLeafSignature checks the signature of the leaf at l, with groupID as
// context for update and commit leaves.
func (t *Tree) VerifyLeafSignature(l LeafIndex, groupID []byte) error {
	leaf := t.Leaf(l)
	if leaf == nil {
		return fail(ErrInvalidTree, "7.3", "leaf %d is blank", l)
	}
	return t.verifyLeafSignature(leaf, groupID, l)
}

// checkCredentialTypes: the leaf's credential type is supported by every
// other member, and the leaf supports every credential type the other
// members use (RFC 9420, Section 7.3). The counts are kept per type, so this
// costs O(types in use), not O(members).
func (t *Tree) checkCredentialTypes(leaf *wire.LeafNode, replaced LeafIndex) error {
	others := t.MemberCount()
	old := t.Leaf(replaced)
	if old != nil {
		others--
	}
	ct := leaf.Credential.CredentialType
	support, _ := t.credSupport.get(credKey(ct))
	if old != nil && slices.Contains(old.Capabilities.Credentials, ct) {
		support--
	}
	if support < others {
		return fail(ErrInvalidLeafNode, "7.3", "credential type %d not supported by all members", ct)
	}
	var err error
	t.credUsed.each(func(k []byte, n uint32) bool {
		c := wire.CredentialType(uint16(k[0])<<8 | uint16(k[1]))
		if old != nil && old.Credential.CredentialType == c {
			n--
		}
		if n > 0 && !slices.Contains(leaf.Capabilities.Credentials, c) {
			err = fail(ErrInvalidLeafNode, "7.3", "credential type %d in use but not supported", c)
			return false
		}
		return true
	})
	return err
}

// Validate checks a tree received when joining (RFC 9420, Section 12.4.3.1):
// its tree hash against treeHash (from the GroupInfo), the parent hash of
// every non-blank parent, every leaf (Section 7.3), every unmerged_leaves
// entry, and key uniqueness. It costs O(n log^2 n) at most for n leaves.
func (t *Tree) Validate(treeHash []byte, p *Policy) error {
	if err := t.checkFree(p); err != nil {
		return err
	}
	feed := par.NewFeed[leafAt]()
	sigs := startLeafSignatures(t.suite, feed, p.GroupID)
	t.Members(func(l LeafIndex, leaf *wire.LeafNode) bool {
		feed.Add(leafAt{l, leaf})
		return true
	})
	feed.Close()
	return t.validate(treeHash, p, feed.Items(), sigs)
}

// DecodeValidated is Decode followed by check and Validate, for a joiner
// (RFC 9420, Section 12.4.3.1), with the same result, error included: the
// first check to fail in the order decoding, check, Validate. check is the
// caller's test of the built tree (a joiner's GroupInfo signature, whose
// key is a leaf's); it must not modify the tree. The difference is when the
// work is done: the leaf signatures, nearly all of it on a large tree, are
// verified on all cores from the moment each leaf is decoded, beside the
// rest of the decoding, building the tree and check, which used to run
// alone on one core. The tree keeps data (its nodes point into it, no copy
// is made): the caller hands it over and never changes it again.
func DecodeValidated(s *suite.Suite, data, treeHash []byte, p *Policy, check func(*Tree) error) (*Tree, error) {
	feed := par.NewFeed[leafAt]()
	var sigs *leafSignatures
	if p != nil && p.Credentials != nil {
		sigs = startLeafSignatures(s, feed, p.GroupID)
	}
	// The members as Validate lists them: nodes come in index order, and a
	// list in which a leaf position holds a non-leaf fails to build below,
	// before these are looked at.
	sp, err := wire.DecodeSparseRatchetTree(data, func(in wire.IndexedNode) {
		if in.Index%2 == 0 && in.Node.LeafNode != nil {
			feed.Add(leafAt{LeafIndex(in.Index / 2), in.Node.LeafNode})
		}
	})
	feed.Close() // every leaf there is has been fed
	var t *Tree
	if err == nil {
		t, err = fromSparse(s, sp)
	}
	if err == nil && check != nil {
		err = check(t)
	}
	if err == nil {
		err = t.checkFree(p)
	}
	if err != nil {
		if sigs != nil {
			sigs.cancel()
		}
		return nil, err
	}
	if err := t.validate(treeHash, p, feed.Items(), sigs); err != nil {
		return nil, err
	}
	return t, nil
}

// leafAt is a non-blank leaf, as Validate checks it.
type leafAt struct {
	l    LeafIndex
	leaf *wire.LeafNode
}

// checkFree runs the checks of Validate that cost nothing.
func (t *Tree) checkFree(p *Policy) error {
	if t.dups != 0 {
		return fail(ErrDuplicateKey, "7.3", "a key appears in more than one node")
	}
	if p == nil || p.Credentials == nil {
		return errNoValidator
	}
	return nil
}

// leafSignatures verifies the signatures of a feed of leaves on all cores,
// in the background.
type leafSignatures struct {
	stop atomic.Bool
	done chan struct{}
	at   int // the first leaf whose signature fails, or the leaf count
	err  error
}

// startLeafSignatures starts verifying the leaf signatures of the members
// fed to feed. It reads only the members' LeafNodes, which the tree never
// modifies, not the tree: hashing fills the tree's caches meanwhile.
func startLeafSignatures(s *suite.Suite, feed *par.Feed[leafAt], groupID []byte) *leafSignatures {
	v := &leafSignatures{done: make(chan struct{})}
	go func() {
		defer close(v.done)
		v.at, v.err = par.ForEachFed(feed, &v.stop, func(_ int, m leafAt) error {
			return verifyLeafSignature(s, m.leaf, groupID, m.l)
		})
	}()
	return v
}

// cancel stops the verification and waits for it to stop. The feed must
// be closed (workers waiting for more items wake only then).
func (v *leafSignatures) cancel() {
	v.stop.Store(true)
	<-v.done
}

// validate is Validate after its free checks, with the members' signatures
// being verified by sigs. The signatures (Section 7.3) are nearly all of
// the cost on a large tree and independent of one another, so they run in
// the background while this goroutine computes the tree hash and the
// parent hashes, which are serial. The result is the one of the checks run
// one after the other: the tree hash, the unmerged leaves, the parent
// hashes, then every leaf in leaf order, the error being that of the first
// leaf failing any check (the credential policy, which calls the
// application's CredentialValidator, stays serial, on this goroutine).
func (t *Tree) validate(treeHash []byte, p *Policy, ms []leafAt, sigs *leafSignatures) error {
	structural := func() error {
		if !bytes.Equal(t.TreeHash(), treeHash) {
			return fail(ErrInvalidTree, "12.4.3.1", "tree hash does not match the GroupInfo")
		}
		if err := t.checkUnmerged(); err != nil {
			return err
		}
		return t.VerifyParentHashes()
	}
	if err := structural(); err != nil {
		sigs.cancel()
		return err
	}
	polAt, polErr := len(ms), error(nil)
	for i, m := range ms {
		if polErr = t.checkLeafPolicy(m.leaf, m.l, m.l, p); polErr != nil {
			polAt = i
			break
		}
	}
	<-sigs.done
	if sigs.err != nil && sigs.at < polAt {
		return sigs.err
	}
	return polErr
}

// checkUnmerged checks every unmerged_leaves list (RFC 9420, Sections 7.1
// and 12.4.3.1): sorted, each entry a non-blank leaf below the node, and
// listed by every non-blank node between that leaf and the node.
func (t *Tree) checkUnmerged() error {
	w := t.Width()
	for x := NodeIndex(1); uint32(x) < w; x += 2 {
		n := t.st.get(x).node
		if n == nil {
			continue
		}
		um := n.ParentNode.UnmergedLeaves
		for i, u := range um {
			if i > 0 && um[i-1] >= u {
				return fail(ErrInvalidTree, "7.1", "node %d: unmerged_leaves not sorted", x)
			}
			lx := LeafIndex(u).Node()
			if u >= t.n || !treemath.InSubtree(lx, x) || t.st.get(lx).node == nil {
				return fail(ErrInvalidTree, "12.4.3.1", "node %d: unmerged leaf %d is not a member below it", x, u)
			}
			for y, _ := treemath.Parent(lx, t.n); y != x; y, _ = treemath.Parent(y, t.n) {
				if m := t.st.get(y).node; m != nil && !contains(m.ParentNode.UnmergedLeaves, u) {
					return fail(ErrInvalidTree, "12.4.3.1", "node %d: unmerged leaf %d missing below", x, u)
				}
			}
		}
	}
	return nil
}

// VerifyParentHashes checks that every non-blank parent node is parent-hash
// valid (RFC 9420, Section 7.9.2), bottom up: each non-blank node D with a
// parent_hash can only be chained to its lowest non-blank ancestor P, so D
// is checked against P alone, and every non-blank parent must be reached by
// exactly one such link. Cost: O(n log n) plus the rehashing of subtrees
// under unmerged leaves, O(n log^2 n) at worst.
func (t *Tree) VerifyParentHashes() error {
	w := t.Width()
	// Only non-blank parents are ever covered: a map keeps this in
	// proportion to them, not to the width (issue 12, finding 7). Both
	// maps are sized for the non-blank nodes (each holds a key in the
	// index), so that a tree of a thousand parents does not grow them a
	// dozen times.
	hint := t.enc.len()
	covered := make(map[NodeIndex]bool, hint/2)
	type sideKey struct {
		p    NodeIndex
		left bool
	}
	phCache := make(map[sideKey][]byte, hint/2)
	for d := NodeIndex(0); uint32(d) < w; d++ {
		dn := t.st.get(d).node
		if dn == nil {
			continue
		}
		var ph []byte
		if l := dn.LeafNode; l != nil {
			if l.LeafNodeSource != wire.LeafNodeSourceCommit {
				continue
			}
			ph = l.ParentHash
		} else {
			ph = dn.ParentNode.ParentHash
		}
		if len(ph) == 0 {
			continue
		}
		// P: the lowest non-blank strict ancestor of D; C: P's child
		// towards D; S: the other child.
		c, p := d, NodeIndex(0)
		found := false
		for {
			q, ok := treemath.Parent(c, t.n)
			if !ok {
				break
			}
			if t.st.get(q).node != nil {
				p, found = q, true
				break
			}
			c = q
		}
		if !found {
			continue
		}
		s, _ := treemath.Sibling(c, t.n)
		pp := t.st.get(p).node.ParentNode
		key := sideKey{p, c < p}
		want, ok := phCache[key]
		if !ok {
			want = t.parentHash(pp.EncryptionKey, pp.ParentHash, t.originalHash(s, pp.UnmergedLeaves))
			phCache[key] = want
		}
		if !bytes.Equal(ph, want) || !t.unmergedMatches(pp, c, d) {
			continue
		}
		if covered[p] {
			return fail(ErrInvalidParentHash, "7.9.2", "node %d is chained from two nodes", p)
		}
		covered[p] = true
	}
	for x := NodeIndex(1); uint32(x) < w; x += 2 {
		if t.st.get(x).node != nil && !covered[x] {
			return fail(ErrInvalidParentHash, "7.9.2", "parent node %d is not parent-hash valid", x)
		}
	}
	return nil
}

// unmergedMatches checks the last criterion of Section 7.9.2: P's unmerged
// leaves under C are exactly the resolution of C without D. D is reached
// from C through blank nodes only, so D is in that resolution; with the
// sizes equal it is enough that each such unmerged leaf is in it too.
func (t *Tree) unmergedMatches(pp *wire.ParentNode, c, d NodeIndex) bool {
	lo, hi := leafRange(c)
	um := pp.UnmergedLeaves
	i, _ := slices.BinarySearch(um, lo)
	j, _ := slices.BinarySearch(um, hi)
	under := um[i:j]
	if int(t.st.get(c).resolution) != len(under)+1 {
		return false
	}
	if d.IsLeaf() && contains(under, uint32(d.Leaf())) {
		return false
	}
	for _, u := range under {
		if !t.inResolution(c, LeafIndex(u)) {
			return false
		}
	}
	return true
}

// inResolution reports whether leaf u appears in the resolution of c.
func (t *Tree) inResolution(c NodeIndex, u LeafIndex) bool {
	un := u.Node()
	if !treemath.InSubtree(un, c) {
		return false
	}
	x := c
	for {
		if n := t.st.get(x).node; n != nil {
			if x.IsLeaf() {
				return x == un
			}
			return contains(n.ParentNode.UnmergedLeaves, uint32(u))
		}
		if x.IsLeaf() {
			return false
		}
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		if treemath.InSubtree(un, l) {
			x = l
		} else {
			x = r
		}
	}
}
