package mls

// Test-only hooks for the group benchmarks (bench_test.go, package
// mls_test). Nothing here is part of the API.

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/keyschedule"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// ForkAs returns a Group for the member at leaf in g's current epoch, as
// that member would hold it if it had not yet received any path secret: g's
// public state (GroupContext, tree, transcript hashes) and epoch secrets,
// copied, with a fresh private state holding only leaf's encryption key
// leafPriv, and signer as its signing key. This is all a member needs to
// create a commit (RFC 9420, Section 12.4.1 encrypts to others' public keys
// and reads no private key but its own leaf's); it cannot decrypt paths that
// reach it through a parent node, so a fork is for committing, not for
// processing.
//
// The benchmarks use it to let every member of a large group commit once
// without keeping a Group per member. The fork's secret tree is a copy of
// g's, so it must send only as leaf, and only in this epoch.
func ForkAs(g *Group, leaf LeafIndex, leafPriv []byte, signer *SignatureKeyPair) (*Group, error) {
	st := g.st
	if st.keys == nil || st.priv == nil {
		return nil, errors.New("mls: ForkAs needs a member's group")
	}
	if g.pending != nil {
		return nil, ErrPendingCommit
	}
	tree := st.tree.Clone()
	l := treemath.LeafIndex(leaf)
	n := tree.Leaf(l)
	if n == nil {
		return nil, errors.New("mls: ForkAs: blank leaf")
	}
	if !bytes.Equal(n.SignatureKey, signer.pub) {
		return nil, errors.New("mls: ForkAs: signer does not match the leaf's signature key")
	}
	priv, err := ratchettree.NewPrivateState(tree, l, leafPriv)
	if err != nil {
		return nil, err
	}
	keys := *st.keys
	for _, s := range []*keyschedule.Secret{&keys.SenderData, &keys.Exporter, &keys.External,
		&keys.Confirmation, &keys.Membership, &keys.Resumption, &keys.Authenticator, &keys.Init} {
		*s = s.Clone()
	}
	ctx := *st.ctx
	nst := &epochState{s: st.s, ctx: &ctx, ctxBytes: bytes.Clone(st.ctxBytes), tree: tree, priv: priv, me: l,
		keys: &keys, interim: bytes.Clone(st.interim), confTag: bytes.Clone(st.confTag)}
	// encryption_secret is gone once g's secret tree exists (RFC 9420,
	// Section 9.2): the fork gets a copy of that tree instead.
	sk, err := skeleton(st.secrets)
	if err != nil {
		return nil, err
	}
	defer clear(sk)
	lb := codec.NewBuilder(nil)
	for _, x := range st.secrets.Initialised() {
		if err := st.secrets.MarshalLeaf(lb, x); err != nil {
			return nil, err
		}
	}
	leafStates, err := lb.Bytes()
	if err != nil {
		return nil, err
	}
	defer clear(leafStates)
	if nst.secrets, err = secrettree.Restore(st.s, sk, leafStates); err != nil {
		return nil, err
	}
	f := &Group{cfg: g.cfg, signer: signer, st: nst}
	f.rememberResumption()
	return f, nil
}

// TreeShape describes a ratchet tree: leaves (the tree's width in leaves),
// members, non-blank parent nodes, blank parent nodes with members on both
// sides (BlankParents: on some member's filtered direct path, so a commit
// could fill them), other blank parent nodes (Unfillable: with members on
// one side or none, never on a filtered direct path, RFC 9420, Section
// 4.1.2; the right edge of a tree whose member count is not a power of
// two), and the total number of unmerged_leaves entries over all parents.
// A tree of m members has at most m-1 non-blank parents.
type TreeShape struct {
	Leaves, Members, Parents, BlankParents, Unfillable, Unmerged int
}

// ShapeOf returns the shape of g's current tree.
func ShapeOf(g *Group) TreeShape {
	t := g.st.tree
	s := TreeShape{Leaves: int(t.LeafCount()), Members: int(t.MemberCount())}
	for x := treemath.NodeIndex(1); uint32(x) < t.Width(); x += 2 {
		p := t.ParentNode(x)
		if p == nil {
			l, _ := treemath.Left(x)
			r, _ := treemath.Right(x)
			if len(t.Resolution(l)) > 0 && len(t.Resolution(r)) > 0 {
				s.BlankParents++
			} else {
				s.Unfillable++
			}
			continue
		}
		s.Parents++
		s.Unmerged += len(p.UnmergedLeaves)
	}
	return s
}

// TreeEncodingsAgree reports whether the ratchet tree's Encode (which copies
// leaves from their kept encodings) gives the same bytes as encoding every
// node afresh.
func TreeEncodingsAgree(g *Group) (bool, error) {
	fast, err := g.st.tree.Encode()
	if err != nil {
		return false, err
	}
	nodes := g.st.tree.Nodes()
	slow, err := codec.Marshal(&nodes)
	if err != nil {
		return false, err
	}
	return bytes.Equal(fast, slow), nil
}

// rejectIdentities is a ratchettree.CredentialValidator that rejects the
// listed basic-credential identities.
type rejectIdentities map[string]bool

func (r rejectIdentities) Validate(c wire.Credential, _ []byte) error {
	if r[string(c.Identity)] {
		return errors.New("identity rejected")
	}
	return nil
}

// TestValidateParallelMatchesSerial: a joiner's tree validation verifies
// leaf signatures in parallel (ratchettree.Validate) and must still return
// exactly the error a leaf-by-leaf check returns: that of the first leaf
// failing any check, whether a signature or the credential policy.
func TestValidateParallelMatchesSerial(t *testing.T) {
	const n = 40 // above ratchettree's threshold for going parallel
	cfg := &Config{}
	sig, err := GenerateSignatureKeyPair(X25519_AES128GCM_SHA256_Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup(cfg, []byte("validate"), BasicCredential([]byte("member 0")), sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	var adds []*Proposal
	for i := 1; i < n; i++ {
		s, err := GenerateSignatureKeyPair(X25519_AES128GCM_SHA256_Ed25519, nil)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := NewKeyPackage(cfg, BasicCredential(fmt.Appendf(nil, "member %d", i)), s, nil)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, AddProposal(kb.KeyPackage))
	}
	if _, err := g.Commit(&CommitOptions{Proposals: adds}); err != nil {
		t.Fatal(err)
	}
	if err := g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	st := g.st
	for _, tc := range []struct {
		name       string
		badSig     []LeafIndex
		reject     []string
		wantSig    bool // the first failure is a signature
		wantReject bool // the first failure is the credential policy
	}{
		{name: "valid"},
		{name: "two bad signatures", badSig: []LeafIndex{30, 35}, wantSig: true},
		{name: "rejected credential first", badSig: []LeafIndex{30}, reject: []string{"member 25"}, wantReject: true},
		{name: "bad signature first", badSig: []LeafIndex{30}, reject: []string{"member 33"}, wantSig: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := st.tree.Nodes()
			for _, l := range tc.badSig {
				x := treemath.LeafIndex(l).Node()
				leaf := *nodes[x].LeafNode
				leaf.Signature = bytes.Clone(leaf.Signature)
				leaf.Signature[0] ^= 1
				nodes[x] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: &leaf}
			}
			tree, err := ratchettree.FromNodes(st.s, nodes)
			if err != nil {
				t.Fatal(err)
			}
			rej := rejectIdentities{}
			for _, id := range tc.reject {
				rej[id] = true
			}
			pol := &ratchettree.Policy{GroupID: st.ctx.GroupID, Credentials: rej, Now: time.Now()}
			// The model: leaf by leaf, the credential policy, then
			// the signature.
			var want error
			tree.Members(func(l treemath.LeafIndex, leaf *wire.LeafNode) bool {
				if rej[string(leaf.Credential.Identity)] {
					want = ratchettree.ErrCredential
				} else {
					want = tree.VerifyLeafSignature(l, st.ctx.GroupID)
				}
				return want == nil
			})
			got := tree.Validate(tree.TreeHash(), pol)
			switch {
			case tc.wantSig && !errors.Is(got, ratchettree.ErrInvalidSignature),
				tc.wantReject && !errors.Is(got, ratchettree.ErrCredential),
				!tc.wantSig && !tc.wantReject && got != nil:
				t.Fatalf("Validate: %v", got)
			}
			if !errors.Is(got, want) && fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("Validate returned %v, a leaf-by-leaf check %v", got, want)
			}
		})
	}
}

// PathCounts returns, for a commit with an UpdatePath from leaf sender in
// g's current tree, the length of sender's filtered direct path (the node
// keys the committer derives), the number of HPKE ciphertexts the path
// carries (the resolutions of the copath nodes, RFC 9420, Section 7.6), and
// the number of node keys the member at leaf receiver derives after
// decrypting its path secret (the filtered path from the common ancestor of
// the two leaves up to the root). The benchmarks use them to compute each
// operation's floor.
func PathCounts(g *Group, sender, receiver LeafIndex) (steps, ciphertexts, derived int) {
	t := g.st.tree
	s := treemath.LeafIndex(sender).Node()
	lca := treemath.CommonAncestor(s, treemath.LeafIndex(receiver).Node())
	path := t.FilteredDirectPath(treemath.LeafIndex(sender))
	for i, p := range path {
		c, _ := treemath.Left(p)
		if treemath.InSubtree(s, c) {
			c, _ = treemath.Right(p)
		}
		ciphertexts += len(t.Resolution(c))
		if p == lca {
			derived = len(path) - i
		}
	}
	return len(path), ciphertexts, derived
}
