package ratchettree

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// member is one client in a simulated group: its keys, its signed
// KeyPackage leaf and, once in the group, its private tree state.
type member struct {
	signer  suite.Signer
	encPriv []byte
	leaf    *wire.LeafNode
	priv    *PrivateState
	index   LeafIndex
}

func testSuite(t testing.TB) *suite.Suite {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newMember(t testing.TB, s *suite.Suite) *member {
	t.Helper()
	sigPriv, sigPub, err := s.GenerateSignatureKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := s.NewSigner(sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	encPriv, encPub, err := s.GenerateKEMKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l := testLeaf(encPub, sigPub)
	l.Signature, err = signer.SignWithLabel("LeafNodeTBS", l.TBS(nil, 0))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := wire.Decode[wire.LeafNode](enc)
	if err != nil {
		t.Fatal(err)
	}
	return &member{signer: signer, encPriv: encPriv, leaf: leaf}
}

// group drives a group's tree through commits: one public tree per epoch,
// every member checking it reaches the same tree and commit secret.
type group struct {
	t       testing.TB
	s       *suite.Suite
	tree    *Tree
	members map[LeafIndex]*member
	epoch   uint64
	pol     *Policy
}

var testGroupID = []byte("scenario group")

func newGroup(t testing.TB) *group {
	s := testSuite(t)
	creator := newMember(t, s)
	tree := New(s, creator.leaf)
	var err error
	if creator.priv, err = NewPrivateState(tree, 0, creator.encPriv); err != nil {
		t.Fatal(err)
	}
	return &group{t: t, s: s, tree: tree, members: map[LeafIndex]*member{0: creator},
		pol: &Policy{GroupID: testGroupID, Credentials: acceptAll{}}}
}

func (g *group) ctx() *wire.GroupContext {
	return &wire.GroupContext{Version: wire.ProtocolVersionMLS10, CipherSuite: wire.CipherSuite(g.s.ID()),
		GroupID: testGroupID, Epoch: g.epoch + 1, ConfirmedTranscriptHash: []byte("cth")}
}

// commit has committer apply removes then adds, create a path, and every
// other remaining member process it; joiners take the Welcome path secret.
// It returns the members removed.
func (g *group) commit(committer LeafIndex, removes []LeafIndex, adds int) []*member {
	t := g.t
	t.Helper()
	c := g.members[committer]
	// The proposals, as every member applies them to its staged tree.
	apply := func(tr *Tree) []LeafIndex {
		for _, r := range removes {
			if err := tr.RemoveLeaf(r); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}
	staged := g.tree.Clone()
	apply(staged)
	var removed []*member
	for _, r := range removes {
		removed = append(removed, g.members[r])
		delete(g.members, r)
	}
	var joiners []LeafIndex
	var newcomers []*member
	for range adds {
		m := newMember(t, g.s)
		if err := staged.ValidateLeafNode(m.leaf, wire.LeafNodeSourceKeyPackage, 0, g.pol); err != nil {
			t.Fatal(err)
		}
		l, err := staged.AddLeaf(m.leaf)
		if err != nil {
			t.Fatal(err)
		}
		m.index = l
		joiners = append(joiners, l)
		newcomers = append(newcomers, m)
	}
	proposed := staged.Clone() // the tree every receiver starts from
	ctx := g.ctx()
	created, err := staged.CreateUpdatePath(&PathParams{Sender: committer, Leaf: staged.Leaf(committer),
		Signer: c.signer, GroupContext: ctx, Joiners: joiners, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	// The path travels on the wire.
	enc, err := codec.Marshal(created.Path)
	if err != nil {
		t.Fatal(err)
	}
	path, err := wire.Decode[wire.UpdatePath](enc)
	if err != nil {
		t.Fatal(err)
	}
	want := staged.TreeHash()
	for l, m := range g.members {
		if l == committer {
			continue
		}
		mine := proposed.Clone()
		rp, err := mine.ApplyUpdatePath(committer, path, joiners, ctx, m.priv, g.pol)
		if err != nil {
			t.Fatalf("epoch %d: member %d processing commit from %d: %v", g.epoch+1, l, committer, err)
		}
		if !bytes.Equal(rp.CommitSecret, created.CommitSecret) {
			t.Fatalf("member %d: commit secret differs", l)
		}
		if !bytes.Equal(mine.TreeHash(), want) {
			t.Fatalf("member %d: tree differs", l)
		}
		if err := rp.Private.Consistent(mine); err != nil {
			t.Fatalf("member %d: %v", l, err)
		}
		m.priv = rp.Private
	}
	c.priv = created.Private
	// Joiners: tree from the ratchet_tree extension, validated, then the
	// path secret of the common ancestor from the Welcome.
	treeBytes, err := staged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if cap(treeBytes) > len(treeBytes)+3 { // the length's 4 reserved octets, less those used
		t.Fatalf("Encode sized its buffer %d for %d bytes", cap(treeBytes), len(treeBytes))
	}
	// Encode appends the nodes itself; the wire types' Marshal is the
	// reference.
	nodes := staged.Nodes()
	if want, err := codec.Marshal(&nodes); err != nil || !bytes.Equal(treeBytes, want) {
		t.Fatalf("Encode differs from wire.RatchetTree.Marshal (%v)", err)
	}
	// The same tree with leaves that lack their received bytes (as built
	// in memory): Encode encodes those itself, to the same bytes.
	stripped := make(wire.RatchetTree, len(nodes))
	for i, n := range nodes {
		if n != nil && n.LeafNode != nil {
			l := *n.LeafNode
			n = &wire.Node{NodeType: n.NodeType, LeafNode: &wire.LeafNode{EncryptionKey: l.EncryptionKey, SignatureKey: l.SignatureKey,
				Credential: l.Credential, Capabilities: l.Capabilities, LeafNodeSource: l.LeafNodeSource, Lifetime: l.Lifetime,
				ParentHash: l.ParentHash, Extensions: l.Extensions, Signature: l.Signature}}
			if n.LeafNode.Raw() != nil {
				t.Fatal("copied leaf kept its received bytes")
			}
		}
		stripped[i] = n
	}
	st, err := FromNodes(g.s, stripped)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := st.Encode(); err != nil || !bytes.Equal(again, treeBytes) {
		t.Fatalf("Encode of leaves without received bytes differs (%v)", err)
	}
	// An Encoding written after other bytes (as into a GroupInfo) appends
	// exactly Len octets, the same as Encode's.
	for _, tr := range []*Tree{staged, st} {
		e, err := tr.Encoding()
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.AppendTo([]byte("prefix"))
		if err != nil || string(out[:6]) != "prefix" || !bytes.Equal(out[6:], treeBytes) || e.Len() != len(treeBytes) {
			t.Fatalf("Encoding: Len %d, appended %d octets (%v), Encode %d", e.Len(), len(out)-6, err, len(treeBytes))
		}
	}
	for _, m := range newcomers {
		jt, err := Decode(g.s, treeBytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := jt.Validate(want, g.pol); err != nil {
			t.Fatalf("joiner %d: validating tree: %v", m.index, err)
		}
		if m.priv, err = NewPrivateState(jt, m.index, m.encPriv); err != nil {
			t.Fatal(err)
		}
		x, ps := created.PathSecretFor(committer, m.index)
		if ps == nil {
			t.Fatalf("joiner %d: no path secret", m.index)
		}
		cs, err := m.priv.ImportPathSecret(jt, x, ps)
		if err != nil {
			t.Fatalf("joiner %d: %v", m.index, err)
		}
		if !bytes.Equal(cs, created.CommitSecret) {
			t.Fatalf("joiner %d: commit secret differs", m.index)
		}
		g.members[m.index] = m
	}
	g.tree = staged
	g.epoch++
	// Every epoch's tree must validate as a joiner would see it.
	if err := g.tree.Validate(g.tree.TreeHash(), g.pol); err != nil {
		t.Fatalf("epoch %d: %v", g.epoch, err)
	}
	return removed
}

// addWithoutPath commits Adds with no UpdatePath (allowed for add-only
// commits, RFC 9420, Section 12.4): the joiners stay unmerged at every
// non-blank ancestor.
func (g *group) addWithoutPath(adds int) {
	t := g.t
	t.Helper()
	for range adds {
		m := newMember(t, g.s)
		if err := g.tree.ValidateLeafNode(m.leaf, wire.LeafNodeSourceKeyPackage, 0, g.pol); err != nil {
			t.Fatal(err)
		}
		l, err := g.tree.AddLeaf(m.leaf)
		if err != nil {
			t.Fatal(err)
		}
		m.index = l
		g.members[l] = m
	}
	treeBytes, err := g.tree.Encode()
	if err != nil {
		t.Fatal(err)
	}
	g.epoch++
	for l, m := range g.members {
		if m.priv != nil {
			continue
		}
		jt, err := Decode(g.s, treeBytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := jt.Validate(g.tree.TreeHash(), g.pol); err != nil {
			t.Fatalf("joiner %d: validating tree: %v", l, err)
		}
		if m.priv, err = NewPrivateState(jt, l, m.encPriv); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGroupScenario(t *testing.T) {
	g := newGroup(t)
	g.commit(0, nil, 3) // 4 members: the path skips all three joiners
	g.commit(2, nil, 0)
	g.commit(1, nil, 2) // joiners land at 4 and 5, unmerged under non-blank parents
	g.commit(4, nil, 0) // a former joiner commits
	g.commit(3, []LeafIndex{5}, 1)
	g.commit(0, []LeafIndex{1, 2}, 0) // internal blanks
	g.commit(3, nil, 3)               // fills the blanks, extends
	// A joiner placed in a blank subtree to the left of existing members:
	// their ciphertext index must skip it (Section 12.4.2).
	g.commit(6, []LeafIndex{4}, 1)
	// Unmerged leaves on the sibling side of a parent-hash link: the
	// joiner's Validate must rehash the original sibling subtree
	// (Section 7.9).
	g.commit(3, []LeafIndex{6}, 0)
	g.addWithoutPath(1)
	g.addWithoutPath(2)
	g.commit(7, nil, 0)
	g.commit(0, nil, 0)
	if g.tree.MemberCount() != uint32(len(g.members)) {
		t.Fatalf("member count %d, want %d", g.tree.MemberCount(), len(g.members))
	}
}

// TestRemovedMemberKeysGone: after a member is removed, no node holds a key
// it knew, in particular none on its former direct path, and it cannot
// process the next commit (RFC 9420, Section 12.1.3).
func TestRemovedMemberKeysGone(t *testing.T) {
	g := newGroup(t)
	g.commit(0, nil, 7)
	g.commit(5, nil, 0) // 5 now knows keys up to the root
	g.commit(2, nil, 0)
	victim := g.members[5]
	known := victim.priv.Nodes()
	if len(known) < 3 {
		t.Fatalf("victim knows only %d keys", len(known))
	}
	var pubs [][]byte
	for _, x := range known {
		pubs = append(pubs, g.tree.EncryptionKey(x))
	}
	before := g.tree.Clone()
	removed := g.commit(0, []LeafIndex{5}, 0)
	if len(removed) != 1 || removed[0] != victim {
		t.Fatal("wrong member removed")
	}
	// The plain Remove, before any path: the direct path must be blank.
	r := before.Clone()
	if err := r.RemoveLeaf(5); err != nil {
		t.Fatal(err)
	}
	for _, x := range append([]NodeIndex{LeafIndex(5).Node()}, treemath.DirectPath(LeafIndex(5).Node(), before.LeafCount())...) {
		if uint32(x) < r.Width() && r.Node(x) != nil {
			t.Fatalf("node %d on the removed member's direct path is not blank", x)
		}
	}
	for _, tr := range []*Tree{r, g.tree} {
		for i, pub := range pubs {
			if x, ok := tr.FindEncryptionKey(pub); ok {
				t.Fatalf("key of node %d the removed member knew is still at node %d", known[i], x)
			}
			for x := NodeIndex(0); uint32(x) < tr.Width(); x++ {
				if bytes.Equal(tr.EncryptionKey(x), pub) {
					t.Fatalf("key the removed member knew is at node %d (index missed it)", x)
				}
			}
		}
	}
	// The removed member cannot follow the group: its leaf is gone.
	staged := g.tree.Clone()
	c := g.members[3]
	created, err := staged.CreateUpdatePath(&PathParams{Sender: 3, Leaf: staged.Leaf(3), Signer: c.signer,
		GroupContext: g.ctx(), Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.tree.Clone().ApplyUpdatePath(3, created.Path, nil, g.ctx(), victim.priv, g.pol); err == nil {
		t.Fatal("removed member processed a later commit")
	}
}

// TestApplyFailureLeavesTreeUnchanged: a rejected UpdatePath leaves the
// tree as it was (STYLE: a failed operation changes nothing).
func TestApplyFailureLeavesTreeUnchanged(t *testing.T) {
	g := newGroup(t)
	g.commit(0, nil, 5)
	staged := g.tree.Clone()
	c := g.members[2]
	created, err := staged.CreateUpdatePath(&PathParams{Sender: 2, Leaf: staged.Leaf(2), Signer: c.signer,
		GroupContext: g.ctx(), Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := g.tree.Encode()
	beforeHash := slices.Clone(g.tree.TreeHash())

	tamper := []struct {
		name string
		f    func(p *wire.UpdatePath)
		want error
	}{
		{"parent hash", func(p *wire.UpdatePath) { p.Nodes[0].EncryptionKey = p.Nodes[1].EncryptionKey[:] }, ErrDuplicateKey},
		{"path length", func(p *wire.UpdatePath) { p.Nodes = p.Nodes[:len(p.Nodes)-1] }, ErrInvalidPath},
		{"ciphertext count", func(p *wire.UpdatePath) {
			cts := p.Nodes[1].AllSecrets()
			p.Nodes[1].SetSecrets(append(cts, cts[0]))
		}, ErrInvalidPath},
		{"leaf signature", func(p *wire.UpdatePath) {
			p.LeafNode.Signature = slices.Clone(p.LeafNode.Signature)
			p.LeafNode.Signature[0] ^= 1
		}, ErrInvalidSignature},
		{"swapped node keys", func(p *wire.UpdatePath) {
			p.Nodes[0].EncryptionKey, p.Nodes[1].EncryptionKey = p.Nodes[1].EncryptionKey, p.Nodes[0].EncryptionKey
		}, ErrInvalidParentHash},
		{"ciphertext", func(p *wire.UpdatePath) {
			for i := range p.Nodes {
				cts := p.Nodes[i].AllSecrets()
				for j := range cts {
					ct := slices.Clone(cts[j].Ciphertext)
					ct[0] ^= 1
					cts[j].Ciphertext = ct
				}
				p.Nodes[i].SetSecrets(cts)
			}
		}, ErrInvalidPath},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			p := *created.Path
			p.Nodes = slices.Clone(p.Nodes)
			tc.f(&p)
			_, err := g.tree.ApplyUpdatePath(2, &p, nil, g.ctx(), g.members[0].priv, g.pol)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			after, _ := g.tree.Encode()
			if !bytes.Equal(before, after) || !bytes.Equal(beforeHash, g.tree.TreeHash()) {
				t.Fatal("tree changed by a rejected path")
			}
		})
	}
	// And the untampered path still applies.
	if _, err := g.tree.ApplyUpdatePath(2, created.Path, nil, g.ctx(), g.members[0].priv, g.pol); err != nil {
		t.Fatal(err)
	}
}

// TestValidateRejects: a joiner's checks (RFC 9420, Section 12.4.3.1) each
// catch a tree broken in one way.
func TestValidateRejects(t *testing.T) {
	g := newGroup(t)
	g.commit(0, nil, 5)
	g.commit(3, []LeafIndex{4}, 0)
	g.addWithoutPath(1) // unmerged leaves present
	good := g.tree.Nodes()
	hash := g.tree.TreeHash()
	if tr, _ := FromNodes(g.s, slices.Clone(good)); tr.Validate(hash, g.pol) != nil {
		t.Fatal("good tree rejected")
	}
	withNode := func(x int, f func(n *wire.Node) *wire.Node) wire.RatchetTree {
		nodes := slices.Clone(good)
		nodes[x] = f(nodes[x])
		return nodes
	}
	parentAt := func(x int, f func(p *wire.ParentNode)) wire.RatchetTree {
		return withNode(x, func(n *wire.Node) *wire.Node {
			p := *n.ParentNode
			f(&p)
			return &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &p}
		})
	}
	leafAt := func(x int, f func(l *wire.LeafNode)) wire.RatchetTree {
		return withNode(x, func(n *wire.Node) *wire.Node {
			enc, _ := codec.Marshal(n.LeafNode)
			l, _ := wire.Decode[wire.LeafNode](enc)
			f(l)
			enc, _ = codec.Marshal(l)
			l, _ = wire.Decode[wire.LeafNode](enc)
			return &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: l}
		})
	}
	// Find a parent with unmerged leaves and a commit-source leaf.
	unmergedAt, commitLeaf := -1, -1
	for i, n := range good {
		if n != nil && n.ParentNode != nil && len(n.ParentNode.UnmergedLeaves) > 0 {
			unmergedAt = i
		}
		if n != nil && n.LeafNode != nil && n.LeafNode.LeafNodeSource == wire.LeafNodeSourceCommit {
			commitLeaf = i
		}
	}
	if unmergedAt < 0 || commitLeaf < 0 {
		t.Fatal("scenario did not produce unmerged leaves and a commit leaf")
	}
	root := int(g.tree.Root())
	cases := []struct {
		name  string
		nodes wire.RatchetTree
		hash  []byte // nil: the broken tree's own hash
		want  error
	}{
		{"tree hash", good, []byte("wrong"), ErrInvalidTree},
		{"parent key", parentAt(root, func(p *wire.ParentNode) { p.EncryptionKey = slices.Clone(p.EncryptionKey); p.EncryptionKey[0] ^= 1 }), nil, ErrInvalidParentHash},
		{"parent hash", parentAt(1, func(p *wire.ParentNode) { p.ParentHash = []byte("x") }), nil, ErrInvalidParentHash},
		{"unmerged dropped", parentAt(unmergedAt, func(p *wire.ParentNode) { p.UnmergedLeaves = nil }), nil, ErrInvalidParentHash},
		{"unmerged unsorted", parentAt(unmergedAt, func(p *wire.ParentNode) {
			p.UnmergedLeaves = append(slices.Clone(p.UnmergedLeaves), 0)
		}), nil, ErrInvalidTree},
		{"duplicate key", parentAt(1, func(p *wire.ParentNode) { p.EncryptionKey = good[0].LeafNode.EncryptionKey }), nil, ErrDuplicateKey},
		{"leaf signature", leafAt(commitLeaf, func(l *wire.LeafNode) { l.Signature[0] ^= 1 }), nil, ErrInvalidSignature},
		{"leaf parent hash", leafAt(commitLeaf, func(l *wire.LeafNode) { l.ParentHash = []byte("x") }), nil, ErrInvalidParentHash},
		{"blank parent", parentAt(root, func(p *wire.ParentNode) {}), nil, nil}, // control: unchanged content
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := FromNodes(g.s, tc.nodes)
			if err != nil {
				t.Fatal(err)
			}
			h := tc.hash
			if h == nil {
				h = tr.TreeHash()
			}
			err = tr.Validate(h, g.pol)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// The joiner's path, leaf signatures verified from the
			// moment the nodes decode, says the same.
			enc, err2 := codec.Marshal(&tc.nodes)
			if err2 != nil {
				t.Fatal(err2)
			}
			if _, err2 = DecodeValidated(g.s, enc, h, g.pol, nil); fmt.Sprint(err2) != fmt.Sprint(err) || !errors.Is(err2, tc.want) {
				t.Fatalf("DecodeValidated: %v, Validate: %v", err2, err)
			}
		})
	}
	// Lifetime and required capabilities through ValidateLeafNode.
	m := newMember(t, g.s)
	late := *g.pol
	late.Now = time.Unix(1<<62+1, 0)
	if err := g.tree.ValidateLeafNode(m.leaf, wire.LeafNodeSourceKeyPackage, 0, &late); !errors.Is(err, ErrInvalidLeafNode) {
		t.Fatalf("expired leaf: %v", err)
	}
	req := *g.pol
	req.Required = &wire.RequiredCapabilities{ExtensionTypes: []wire.ExtensionType{0xff00}}
	if err := g.tree.ValidateLeafNode(m.leaf, wire.LeafNodeSourceKeyPackage, 0, &req); !errors.Is(err, ErrInvalidLeafNode) {
		t.Fatalf("missing required extension: %v", err)
	}
	if err := g.tree.ValidateLeafNode(g.members[1].leaf, wire.LeafNodeSourceKeyPackage, 0, g.pol); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("re-adding a member's key package: %v", err)
	}
	if err := g.tree.ValidateLeafNode(m.leaf, wire.LeafNodeSourceUpdate, 2, g.pol); !errors.Is(err, ErrInvalidLeafNode) {
		t.Fatalf("wrong source: %v", err)
	}
	deny := *g.pol
	deny.Credentials = denyAll{}
	if err := g.tree.ValidateLeafNode(m.leaf, wire.LeafNodeSourceKeyPackage, 0, &deny); !errors.Is(err, ErrCredential) || !errors.Is(err, errDenied) {
		t.Fatalf("denied credential: %v", err)
	}
	if err := g.tree.ValidateLeafNode(m.leaf, wire.LeafNodeSourceKeyPackage, 0, g.pol); err != nil {
		t.Fatal(err)
	}
}

var errDenied = errors.New("denied by test")

type denyAll struct{}

func (denyAll) Validate(wire.Credential, []byte) error { return errDenied }

// forgePath builds, as member sender of g, an UpdatePath that is consistent
// in everything a receiver can check before decrypting (parent hashes
// chained over pubs, the LeafNode signed, each ciphertext encrypted under
// the provisional context to the copath resolution) but whose node keys
// pubs and path secrets (secret(i) for filtered path node i) need not match:
// what a dishonest committer can send.
// With badSig the LeafNode's signature is spoiled after signing (the
// ciphertexts are still encrypted under the context that holds it).
func forgePath(t *testing.T, g *group, sender LeafIndex, leaf wire.LeafNode, pubs [][]byte, secret func(i int) []byte, badSig bool) *wire.UpdatePath {
	t.Helper()
	w := g.tree.Clone()
	steps := w.filteredPath(sender)
	leaf.ParentHash = w.mergePath(sender, steps, pubs)
	leaf.Signature = nil
	sig, err := g.members[sender].signer.SignWithLabel(labelLeafNodeTBS, leaf.TBS(g.ctx().GroupID, uint32(sender)))
	if err != nil {
		t.Fatal(err)
	}
	if badSig {
		sig[0] ^= 1
	}
	leaf.Signature = sig
	enc, err := codec.Marshal(&leaf)
	if err != nil {
		t.Fatal(err)
	}
	final, err := wire.Decode[wire.LeafNode](enc)
	if err != nil {
		t.Fatal(err)
	}
	w.write(sender.Node(), &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: final})
	ctx := *g.ctx()
	ctx.TreeHash = w.TreeHash()
	ctxBytes, err := codec.Marshal(&ctx)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]wire.UpdatePathNode, len(steps))
	for i, st := range steps {
		var cts []wire.HPKECiphertext
		for _, r := range w.resolve(st.copath, nil, nil) {
			kem, ct, err := g.s.EncryptWithLabel(w.EncryptionKey(r), labelUpdatePathNode, ctxBytes, secret(i))
			if err != nil {
				t.Fatal(err)
			}
			cts = append(cts, wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct})
		}
		nodes[i] = wire.UpdatePathNode{EncryptionKey: pubs[i]}
		nodes[i].SetSecrets(cts)
	}
	return &wire.UpdatePath{LeafNode: *final, Nodes: nodes}
}

// honestPath is a path member sender of g creates honestly (not applied to
// g's tree): its node keys, and its path secrets by filtered path node, the
// material forgePath rearranges.
func honestPath(t *testing.T, g *group, sender LeafIndex) (created *CreatedPath, pubs [][]byte, secret func(i int) []byte) {
	t.Helper()
	created, err := g.tree.Clone().CreateUpdatePath(&PathParams{Sender: sender, Leaf: g.tree.Leaf(sender),
		Signer: g.members[sender].signer, GroupContext: g.ctx(), Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	steps := g.tree.filteredPath(sender)
	pubs = make([][]byte, len(steps))
	for i := range steps {
		pubs[i] = created.Path.Nodes[i].EncryptionKey
	}
	return created, pubs, func(i int) []byte { return created.secrets[steps[i].parent] }
}

// TestPathKeysMatchSecrets: a receiver derives the node key of every path
// secret it learns and refuses a path whose published key differs (RFC
// 9420, Section 7.5, step 6 of receiving: "Verify that the derived public
// keys are the same as the corresponding public keys sent in the
// UpdatePath"), wherever on the path the two part: at the node it
// decrypts, or only at the root. Every other check passes (the control
// path, forged the same way with honest keys, applies), a refused path
// leaves the tree as it was, and the receiver then applies the committer's
// honest path.
func TestPathKeysMatchSecrets(t *testing.T) {
	g := newGroup(t)
	g.commit(0, nil, 7)
	const sender = LeafIndex(5)
	created, honestPubs, honest := honestPath(t, g, sender)
	_, otherPub, err := g.s.GenerateKEMKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrongRoot := slices.Clone(honestPubs)
	wrongRoot[len(wrongRoot)-1] = otherPub
	stray := make([]byte, g.s.HashSize())
	rand.Read(stray)

	before, _ := g.tree.Encode()
	cases := []struct {
		name   string
		pubs   [][]byte
		secret func(int) []byte
		refuse bool
	}{
		{"control: honest keys and secrets", honestPubs, honest, false},
		{"secrets of another chain", honestPubs, func(int) []byte { return stray }, true},
		{"another key at the root", wrongRoot, honest, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := forgePath(t, g, sender, created.Path.LeafNode, tc.pubs, tc.secret, false)
			// Member 0 shares only the root with leaf 5; member 4 is its
			// sibling and decrypts at the lowest node.
			for _, recv := range []LeafIndex{0, 4} {
				c := g.tree.Clone()
				_, err := c.ApplyUpdatePath(sender, p, nil, g.ctx(), g.members[recv].priv, g.pol)
				switch {
				case !tc.refuse && err != nil:
					t.Fatalf("receiver %d: %v", recv, err)
				case !tc.refuse:
					continue
				case !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), "does not match"):
					t.Fatalf("receiver %d: got %v, want the derived key refused", recv, err)
				}
				if after, _ := c.Encode(); !bytes.Equal(before, after) {
					t.Fatal("a refused path changed the tree")
				}
				// The receiver goes on: the committer's honest path
				// applies after the refused one, with the same keys.
				rp, err := c.ApplyUpdatePath(sender, created.Path, nil, g.ctx(), g.members[recv].priv, g.pol)
				if err != nil || !bytes.Equal(rp.CommitSecret, created.CommitSecret) {
					t.Fatalf("receiver %d: the honest path after the refused one: %v", recv, err)
				}
			}
		})
	}
}

// TestPathLeafSignatureRefusedAfterDecrypting: the committer's LeafNode
// signature is verified beside the path's decryption. A path that is valid
// in everything but that signature (so its secrets decrypt and its keys
// derive) is refused with ErrInvalidSignature, every path secret and commit
// secret the receiver derived for it is erased (RFC 9420, Section 9.2), and
// the receiver's own keys survive: the honest path applies after it.
func TestPathLeafSignatureRefusedAfterDecrypting(t *testing.T) {
	g := newGroup(t)
	g.commit(0, nil, 7)
	const sender, recv = LeafIndex(5), LeafIndex(4)
	created, pubs, honest := honestPath(t, g, sender)
	bad := forgePath(t, g, sender, created.Path.LeafNode, pubs, honest, true)
	good := forgePath(t, g, sender, created.Path.LeafNode, pubs, honest, false)

	var seen [][]byte
	ObservePathSecret = func(s []byte) { seen = append(seen, s) }
	_, err := g.tree.Clone().ApplyUpdatePath(sender, bad, nil, g.ctx(), g.members[recv].priv, g.pol)
	ObservePathSecret = nil
	if !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("got %v, want ErrInvalidSignature", err)
	}
	if runtime.GOMAXPROCS(0) > 1 && len(seen) < 2 {
		// On one core the signature is checked first and nothing is
		// decrypted; on more the path is decrypted meanwhile.
		t.Fatalf("the receiver derived %d path secrets: it did not decrypt", len(seen))
	}
	for i, s := range seen {
		if !bytes.Equal(s, make([]byte, len(s))) {
			t.Fatalf("path secret %d of %d not erased", i, len(seen))
		}
	}
	rp, err := g.tree.Clone().ApplyUpdatePath(sender, good, nil, g.ctx(), g.members[recv].priv, g.pol)
	if err != nil {
		t.Fatalf("the honest path after the refused one: %v", err)
	}
	if !bytes.Equal(rp.CommitSecret, created.CommitSecret) {
		t.Fatal("commit secret differs from the committer's")
	}
}

// denyLeaf refuses the credential of one signature key.
type denyLeaf struct{ key []byte }

func (d denyLeaf) Validate(_ wire.Credential, key []byte) error {
	if bytes.Equal(key, d.key) {
		return errDenied
	}
	return nil
}

// TestDecodeValidatedOrder: DecodeValidated verifies the leaf signatures
// while the tree is built and the caller's check runs, but reports the
// error of the checks run one after the other: decoding, the caller's
// check, then Validate's order (a bad leaf signature and a refused
// credential: the one at the lower leaf).
func TestDecodeValidatedOrder(t *testing.T) {
	g := newGroup(t)
	g.commit(0, nil, 19)
	// 40 leaves: the signatures are verified on all cores. Leaves 20 to 39
	// are unmerged, so a change to one is seen by the tree hash but not by
	// the parent hashes.
	g.addWithoutPath(20)
	good := g.tree.Nodes()
	hash := g.tree.TreeHash()
	encode := func(nodes wire.RatchetTree) []byte {
		enc, err := codec.Marshal(&nodes)
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	badSigAt := func(l LeafIndex) wire.RatchetTree {
		nodes := slices.Clone(good)
		leaf := *nodes[l.Node()].LeafNode
		leaf.Signature = slices.Clone(leaf.Signature)
		leaf.Signature[0] ^= 1
		nodes[l.Node()] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: &leaf}
		return nodes
	}
	errCheck := errors.New("check refused")
	var checked *Tree
	keep := func(tr *Tree) error { checked = tr; return nil }
	refuse := func(*Tree) error { return errCheck }
	deny := func(l LeafIndex) *Policy {
		p := *g.pol
		p.Credentials = denyLeaf{good[l.Node()].LeafNode.SignatureKey}
		return &p
	}
	cases := []struct {
		name  string
		data  []byte
		hash  []byte
		pol   *Policy
		check func(*Tree) error
		want  error
	}{
		{"good", encode(good), hash, g.pol, keep, nil},
		{"decoding first", encode(good)[:100], hash, g.pol, refuse, codec.ErrMalformed},
		{"check before a bad signature", encode(badSigAt(3)), hash, g.pol, refuse, errCheck},
		{"check before the tree hash", encode(good), []byte("wrong"), g.pol, refuse, errCheck},
		{"tree hash before a bad signature", encode(badSigAt(3)), []byte("wrong"), g.pol, keep, ErrInvalidTree},
		{"signature at a lower leaf than a refused credential", encode(badSigAt(25)), nil, deny(30), keep, ErrInvalidSignature},
		{"refused credential at a lower leaf than a bad signature", encode(badSigAt(30)), nil, deny(25), keep, errDenied},
		{"no validator", encode(good), hash, &Policy{GroupID: testGroupID}, keep, errNoValidator},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checked = nil
			if tc.hash == nil { // the changed tree's own hash
				tr, err := Decode(g.s, tc.data)
				if err != nil {
					t.Fatal(err)
				}
				tc.hash = tr.TreeHash()
			}
			tr, err := DecodeValidated(g.s, tc.data, tc.hash, tc.pol, tc.check)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil {
				if tr != nil {
					t.Fatal("a tree returned with an error")
				}
				return
			}
			if checked != tr || !bytes.Equal(tr.TreeHash(), hash) {
				t.Fatal("check did not see the tree returned, or the tree differs")
			}
		})
	}
}
