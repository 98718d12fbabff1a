package ratchettree

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/par"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// cpuTime returns the process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// fullTree builds a tree of n leaves with every node non-blank. Only the
// keys the benchmark uses are real: the sender's signature key (leaf
// sender) and the receiver's leaf key (leaf recv); the other nodes hold
// random public keys, which cost nothing to make and are never decrypted
// with. Parent hashes are not set: processing a commit checks only the new
// path's chain.
func fullTree(tb testing.TB, s *suite.Suite, n uint32, sender, recv LeafIndex) (*Tree, suite.Signer, []byte) {
	tb.Helper()
	sigPriv, sigPub, err := s.GenerateSignatureKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := s.NewSigner(sigPriv)
	if err != nil {
		tb.Fatal(err)
	}
	recvPriv, recvPub, err := s.GenerateKEMKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	nodes := make(wire.RatchetTree, treemath.Width(n))
	randKey := func() []byte {
		k := make([]byte, 32)
		rand.Read(k)
		return k
	}
	for i := range nodes {
		x := NodeIndex(i)
		if !x.IsLeaf() {
			nodes[i] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &wire.ParentNode{EncryptionKey: randKey(), ParentHash: []byte{}}}
			continue
		}
		leaf := testLeaf(randKey(), randKey())
		switch x.Leaf() {
		case sender:
			leaf.SignatureKey = sigPub
		case recv:
			leaf.EncryptionKey = recvPub
		}
		nodes[i] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: leaf}
	}
	t, err := FromNodes(s, nodes)
	if err != nil {
		tb.Fatal(err)
	}
	return t, signer, recvPriv
}

// testLeaf is a basic-credential key_package leaf (unsigned).
func testLeaf(encKey, sigKey []byte) *wire.LeafNode {
	return &wire.LeafNode{
		EncryptionKey: encKey,
		SignatureKey:  sigKey,
		Credential:    wire.Credential{CredentialType: wire.CredentialTypeBasic, Identity: sigKey[:8]},
		Capabilities: wire.Capabilities{
			Versions:     []wire.ProtocolVersion{wire.ProtocolVersionMLS10},
			CipherSuites: []wire.CipherSuite{1},
			Credentials:  []wire.CredentialType{wire.CredentialTypeBasic},
		},
		LeafNodeSource: wire.LeafNodeSourceKeyPackage,
		Lifetime:       wire.Lifetime{NotBefore: 0, NotAfter: 1 << 62},
		Extensions:     []wire.Extension{},
		Signature:      []byte{},
	}
}

type acceptAll struct{}

func (acceptAll) Validate(wire.Credential, []byte) error { return nil }

// BenchmarkApplyUpdatePath measures processing one commit's UpdatePath on a
// full tree, as a member does: clone the tree (the group stages every
// commit on a clone), validate and merge the path, recompute the tree hash,
// decrypt one path secret and derive and check the rest. The receiver is the
// sender's sibling, the worst case: it derives a key for every level.
func BenchmarkApplyUpdatePath(b *testing.B) {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	for _, logN := range []int{10, 14, 17} {
		b.Run(fmt.Sprintf("leaves=2^%d", logN), func(b *testing.B) {
			n := uint32(1) << logN
			sender, recv := LeafIndex(0), LeafIndex(1)
			t, signer, recvPriv := fullTree(b, s, n, sender, recv)
			t.TreeHash() // the initial O(n) hash, as after joining
			ctx := &wire.GroupContext{Version: wire.ProtocolVersionMLS10, CipherSuite: 1,
				GroupID: []byte("bench group"), Epoch: 7, ConfirmedTranscriptHash: make([]byte, 32)}
			st := t.Clone()
			created, err := st.CreateUpdatePath(&PathParams{Sender: sender, Leaf: t.Leaf(sender),
				Signer: signer, GroupContext: ctx, Rand: rand.Reader})
			if err != nil {
				b.Fatal(err)
			}
			me, err := NewPrivateState(t, recv, recvPriv)
			if err != nil {
				b.Fatal(err)
			}
			pol := &Policy{Credentials: acceptAll{}}
			runtime.GC() // don't bill the loop for collecting the setup's garbage
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				staged := t.Clone()
				rp, err := staged.ApplyUpdatePath(sender, created.Path, nil, ctx, me, pol)
				if err != nil {
					b.Fatal(err)
				}
				if string(rp.CommitSecret) != string(created.CommitSecret) {
					b.Fatal("commit secret mismatch")
				}
			}
			// CPU time is steadier than wall time on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(len(created.Path.Nodes)), "path-nodes")
		})
	}
}

// BenchmarkCreateUpdatePath measures making one commit's UpdatePath on a
// full tree, as a committer does on its staged copy: new path secrets, one
// key derivation per level, and a seal to each copath node (one per level in
// a full tree). From 16 seals on (2^16 leaves and more) the seals are spread
// over the cores (par.MinParallel), so 2^17 shows what that costs or saves
// against 2^14, which seals on one goroutine.
func BenchmarkCreateUpdatePath(b *testing.B) {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	for _, logN := range []int{10, 14, 17} {
		b.Run(fmt.Sprintf("leaves=2^%d", logN), func(b *testing.B) {
			sender := LeafIndex(0)
			t, signer, _ := fullTree(b, s, uint32(1)<<logN, sender, 1)
			t.TreeHash()
			ctx := &wire.GroupContext{Version: wire.ProtocolVersionMLS10, CipherSuite: 1,
				GroupID: []byte("bench group"), Epoch: 7, ConfirmedTranscriptHash: make([]byte, 32)}
			runtime.GC()
			cpu0 := cpuTime()
			var seals int
			for b.Loop() {
				st := t.Clone()
				created, err := st.CreateUpdatePath(&PathParams{Sender: sender, Leaf: t.Leaf(sender),
					Signer: signer, GroupContext: ctx, Rand: rand.Reader})
				if err != nil {
					b.Fatal(err)
				}
				seals = 0
				for _, n := range created.Path.Nodes {
					seals += n.Secrets()
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(seals), "seals")
		})
	}
}

// TestCommitRehashesOnePath: processing a commit on a full tree recomputes
// the hashes of the committer's path and nothing else, whatever the size
// (RFC 9420, Section 7.8 hashes cached per node).
func TestCommitRehashesOnePath(t *testing.T) {
	s := testSuite(t)
	for _, logN := range []int{6, 12} {
		n := uint32(1) << logN
		tr, signer, recvPriv := fullTree(t, s, n, 0, 1)
		tr.TreeHash()
		ctx := &wire.GroupContext{Version: wire.ProtocolVersionMLS10, CipherSuite: 1, GroupID: []byte("g")}
		st := tr.Clone()
		created, err := st.CreateUpdatePath(&PathParams{Sender: 0, Leaf: tr.Leaf(0), Signer: signer, GroupContext: ctx, Rand: rand.Reader})
		if err != nil {
			t.Fatal(err)
		}
		me, err := NewPrivateState(tr, 1, recvPriv)
		if err != nil {
			t.Fatal(err)
		}
		before := nodeHashes.Load()
		staged := tr.Clone()
		if _, err := staged.ApplyUpdatePath(0, created.Path, nil, ctx, me, &Policy{Credentials: acceptAll{}}); err != nil {
			t.Fatal(err)
		}
		staged.TreeHash()
		// The leaf and its logN ancestors.
		if got := nodeHashes.Load() - before; got != int64(logN+1) {
			t.Fatalf("2^%d leaves: %d node hashes for one commit, want %d", logN, got, logN+1)
		}
	}
}

// BenchmarkJoinTree measures what a joiner does with a received tree of
// 1,000 signed members (one commit added them, so every parent is set):
// decode it, then validate it (every leaf signature on all cores, the tree
// hash and the parent hashes on this goroutine), first one after the other
// and then with DecodeValidated, which starts on the signatures while the
// rest decodes. Both report the floor: the leaf signatures verified on all
// cores, timed in the same run.
func BenchmarkJoinTree(b *testing.B) {
	g := newGroup(b)
	g.commit(0, nil, 999)
	nodes := g.tree.Nodes()
	data, err := codec.Marshal(&nodes)
	if err != nil {
		b.Fatal(err)
	}
	hash := g.tree.TreeHash()
	var leaves []*wire.LeafNode
	g.tree.Members(func(_ LeafIndex, l *wire.LeafNode) bool { leaves = append(leaves, l); return true })
	floor := func() time.Duration {
		t0 := time.Now()
		if err := par.ForEach(len(leaves), true, func(i int) error {
			return verifyLeafSignature(g.s, leaves[i], g.pol.GroupID, LeafIndex(i))
		}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for _, v := range []struct {
		name string
		join func() error
	}{
		{"decode-then-validate", func() error {
			tr, err := Decode(g.s, data)
			if err != nil {
				return err
			}
			return tr.Validate(hash, g.pol)
		}},
		{"decode-validated", func() error { _, err := DecodeValidated(g.s, data, hash, g.pol, nil); return err }},
	} {
		b.Run(v.name, func(b *testing.B) {
			var spent, least time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := v.join(); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(t0)
				b.StopTimer()
				least += floor()
				b.StartTimer()
			}
			b.ReportMetric(float64(least.Nanoseconds())/float64(b.N), "floor-ns")
			b.ReportMetric(float64(spent)/float64(least), "x-floor")
		})
	}
}
