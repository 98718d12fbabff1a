package art

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/ratchettree"
	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// The side-by-side benchmark of docs/ART-vs-TreeKEM.md.
//
//	go test -run '^$' -bench 'BenchmarkARTvsTreeKEM' -benchtime 200ms ./experimental/art/
//
// ART_BENCH_10K=1 adds the 10,000-member rows. For each protocol, size and
// tree state it measures one update: the message's bytes, the sender's time
// (make the update), the receiver's time (check and process it; the
// receiver is the sender's sibling, which derives a key at every level, the
// worst case for both), and "retry": what the loser of two updates made in
// the same epoch spends to get its change in (process the winner, make its
// update again). Floors are the counted asymmetric operations of the same
// op priced at their unit times measured in the same run; x-floor is
// measured time over floor.

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// units are unit costs, measured once per run.
type units struct {
	dh, base, sign, verify, seal, open, derive float64 // ns
}

// measureUnits times each primitive. The machine is shared, so each
// group of sub-benchmarks measures its own units just before it runs.
func measureUnits(s *suite.Suite) *units {
	const n = 200
	// CPU time, like the measurements they are compared with.
	time1 := func(f func()) float64 {
		f()
		runtime.GC()
		t0 := cpuNow()
		for range n {
			f()
		}
		return float64((cpuNow() - t0).Nanoseconds()) / n
	}
	a, b := make([]byte, 32), make([]byte, 32)
	rand.Read(a)
	rand.Read(b)
	ka, _ := ecdh.X25519().NewPrivateKey(a)
	kb, _ := ecdh.X25519().NewPrivateKey(b)
	pb := kb.PublicKey().Bytes()
	sigPriv, sigPub, _ := s.GenerateSignatureKey(rand.Reader)
	signer, _ := s.NewSigner(sigPriv)
	msg := make([]byte, 200)
	sig, _ := signer.SignWithLabel("x", msg)
	kPriv, kPub, _ := s.GenerateKEMKey(rand.Reader)
	kem, ct, _ := s.EncryptWithLabel(kPub, "UpdatePathNode", msg, a)
	u := &units{
		dh: time1(func() {
			p, _ := ecdh.X25519().NewPublicKey(pb)
			ka.ECDH(p)
		}),
		base:   time1(func() { ecdh.X25519().NewPrivateKey(a) }),
		sign:   time1(func() { signer.SignWithLabel("x", msg) }),
		verify: time1(func() { s.VerifyWithLabel(sigPub, "x", msg, sig) }),
		seal:   time1(func() { s.EncryptWithLabel(kPub, "UpdatePathNode", msg, a) }),
		open:   time1(func() { s.DecryptWithLabel(kPriv, "UpdatePathNode", msg, kem, ct) }),
		derive: time1(func() { s.DeriveKeyPair(a) }),
	}
	return u
}

// opCost prices counted ART operations.
func (u *units) art(c OpCount) float64 {
	return float64(c.DH)*u.dh + float64(c.BaseMult)*u.base + float64(c.Sign)*u.sign + float64(c.Verify)*u.verify
}

func benchSizes() []int {
	sizes := []int{10, 100, 1000}
	if os.Getenv("ART_BENCH_10K") != "" {
		sizes = append(sizes, 10000)
	}
	return sizes
}

var states = []struct {
	name    string
	removed int // percent
}{{"full", 0}, {"removed10", 10}, {"removed50", 50}}

// victims picks removed% of the leaves other than 0 and 1, repeatably.
func victims(n, percent int) []int {
	r := mrand.New(mrand.NewPCG(uint64(n), uint64(percent)))
	perm := r.Perm(n - 2)
	k := n * percent / 100
	out := make([]int, 0, k)
	for _, v := range perm[:min(k, len(perm))] {
		out = append(out, v+2)
	}
	return out
}

func report(b *testing.B, cpu0 time.Duration, floor float64, bytes int) {
	per := float64((cpuNow() - cpu0).Nanoseconds()) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/op")
	if floor > 0 {
		b.ReportMetric(floor, "floor-ns")
		b.ReportMetric(per/floor, "x-floor")
	}
	if bytes > 0 {
		b.ReportMetric(float64(bytes), "msg-B")
	}
}

// --- ART ---

type artFixture struct {
	sender, recv *Group // leaves 0 and 1
	r            *detRand
}

// artState builds an n-member ART group as seen by leaves 0 and 1 and
// applies the removals (by leaf 0) and re-adds of half as many (by leaf
// 0, into the vacant slots), as the paper handles them.
func artState(b *testing.B, n, percent int) *artFixture {
	w := &world{t: b, s: Suite1(), r: newRand(byte(percent))}
	var others []Prekey
	var p1 *person
	for i := 1; i < n; i++ {
		p := newPerson(b, w.s, w.r)
		if i == 1 {
			p1 = p
		}
		others = append(others, p.prekey)
	}
	p0 := newPerson(b, w.s, w.r)
	g0, setupMsg, err := NewGroup(w.s, p0.signer, others, w.r)
	if err != nil {
		b.Fatal(err)
	}
	g1, err := Join(w.s, p1.signer, 1, p1.prekeyPriv, p0.prekey.SigKey, setupMsg)
	if err != nil {
		b.Fatal(err)
	}
	apply := func(st *Staged) {
		if err := g0.Merge(st); err != nil {
			b.Fatal(err)
		}
		rst, err := g1.Receive(st.Message)
		if err != nil {
			b.Fatal(err)
		}
		if err := g1.Merge(rst); err != nil {
			b.Fatal(err)
		}
	}
	vs := victims(n, percent)
	for _, v := range vs {
		st, err := g0.Remove(v, w.r)
		if err != nil {
			b.Fatal(err)
		}
		apply(st)
	}
	for range len(vs) / 2 {
		st, err := g0.Add(newPerson(b, w.s, w.r).prekey, w.r)
		if err != nil {
			b.Fatal(err)
		}
		apply(st)
	}
	return &artFixture{sender: g0, recv: g1, r: w.r}
}

func (g *Group) cloneForBench() *Group {
	c := *g
	c.pub = append([][]byte(nil), g.pub...)
	c.sigKeys = append([][]byte(nil), g.sigKeys...)
	c.secrets = make(map[int][]byte, len(g.secrets))
	for k, v := range g.secrets {
		c.secrets[k] = v
	}
	return &c
}

func benchART(b *testing.B, n, percent int) {
	f := artState(b, n, percent)
	u := measureUnits(Suite1())
	b.Run("send", func(b *testing.B) {
		var st *Staged
		runtime.GC()
		ops0, cpu0 := Ops(), cpuNow()
		for b.Loop() {
			var err error
			if st, err = f.sender.Update(f.r); err != nil {
				b.Fatal(err)
			}
		}
		report(b, cpu0, u.art(Ops().Sub(ops0))/float64(b.N), len(st.Message))
	})
	up, err := f.sender.Update(f.r)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("recv", func(b *testing.B) {
		runtime.GC()
		ops0, cpu0 := Ops(), cpuNow()
		for b.Loop() {
			st, err := f.recv.Receive(up.Message)
			if err != nil {
				b.Fatal(err)
			}
			if string(st.treeKey) != string(up.treeKey) {
				b.Fatal("tree key mismatch")
			}
		}
		report(b, cpu0, u.art(Ops().Sub(ops0))/float64(b.N), 0)
	})
	b.Run("retry", func(b *testing.B) {
		// The loser (leaf 1) made an update for this stage; leaf 0's won.
		// It processes the winner and makes its update again on the new
		// tree (its first one is simply dropped: nobody can apply it).
		var spent time.Duration
		var counted OpCount
		for b.Loop() {
			b.StopTimer()
			g := f.recv.cloneForBench()
			b.StartTimer()
			ops0, cpu0 := Ops(), cpuNow()
			st, err := g.Receive(up.Message)
			if err != nil {
				b.Fatal(err)
			}
			if err := g.Merge(st); err != nil {
				b.Fatal(err)
			}
			if _, err := g.Update(f.r); err != nil {
				b.Fatal(err)
			}
			spent += cpuNow() - cpu0
			counted = Ops().Sub(ops0)
		}
		per := float64(spent.Nanoseconds()) / float64(b.N)
		b.ReportMetric(per, "cpu-ns/op")
		b.ReportMetric(u.art(counted), "floor-ns")
		b.ReportMetric(per/u.art(counted), "x-floor")
	})
}

// --- TreeKEM (internal/ratchettree) ---

type tkFixture struct {
	s       *suite.Suite
	tree    *ratchettree.Tree
	signers [2]suite.Signer
	privs   [2]*ratchettree.PrivateState
	ctx     *wire.GroupContext
	pol     *ratchettree.Policy
}

type acceptAll struct{}

func (acceptAll) Validate(wire.Credential, []byte) error { return nil }

func randKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func benchLeaf(encKey, sigKey []byte) *wire.LeafNode {
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

// tkState builds an n-member TreeKEM tree as a long-lived group has it
// when every member has committed once: every parent over a member holds a
// key (random public keys stand in for keys nobody here decrypts with).
// Leaves 0 and 1 have real keys. Then removed% of the members are removed
// and half as many added, all in one commit by leaf 0 (Remove and Add
// proposals plus leaf 0's UpdatePath, RFC 9420, Section 12.4): the
// removed members' paths stay blank and the added ones sit as unmerged
// leaves until someone above them commits.
func tkState(b *testing.B, n, percent int) *tkFixture {
	s := Suite1()
	f := &tkFixture{s: s, pol: &ratchettree.Policy{Credentials: acceptAll{}}}
	leaves := uint32(1)
	for leaves < uint32(n) {
		leaves *= 2
	}
	nodes := make(wire.RatchetTree, treemath.Width(leaves))
	var encPriv [2][]byte
	var sigPub [2][]byte
	for i := range 2 {
		sp, pub, err := s.GenerateSignatureKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if f.signers[i], err = s.NewSigner(sp); err != nil {
			b.Fatal(err)
		}
		sigPub[i] = pub
		var epub []byte
		if encPriv[i], epub, err = s.GenerateKEMKey(rand.Reader); err != nil {
			b.Fatal(err)
		}
		nodes[2*i] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: benchLeaf(epub, pub)}
	}
	for l := 2; l < n; l++ {
		nodes[2*l] = &wire.Node{NodeType: wire.NodeTypeLeaf, LeafNode: benchLeaf(randKey(), randKey())}
	}
	for i := range nodes {
		x := treemath.NodeIndex(i)
		if x.IsLeaf() {
			continue
		}
		// A parent holds a key if a member is under it.
		lvl := treemath.Level(x)
		first := (uint32(i) >> (lvl + 1)) << lvl
		if first < uint32(n) {
			nodes[i] = &wire.Node{NodeType: wire.NodeTypeParent, ParentNode: &wire.ParentNode{EncryptionKey: randKey(), ParentHash: []byte{}}}
		}
	}
	for nodes[len(nodes)-1] == nil { // the extension lists no trailing blanks
		nodes = nodes[:len(nodes)-1]
	}
	t, err := ratchettree.FromNodes(s, nodes)
	if err != nil {
		b.Fatal(err)
	}
	f.ctx = &wire.GroupContext{Version: wire.ProtocolVersionMLS10, CipherSuite: 1,
		GroupID: []byte("bench group"), Epoch: 7, ConfirmedTranscriptHash: make([]byte, 32)}
	for i := range 2 {
		if f.privs[i], err = ratchettree.NewPrivateState(t, ratchettree.LeafIndex(i), encPriv[i]); err != nil {
			b.Fatal(err)
		}
	}
	t.TreeHash()
	vs := victims(n, percent)
	if len(vs) > 0 {
		for _, v := range vs {
			if err := t.RemoveLeaf(ratchettree.LeafIndex(v)); err != nil {
				b.Fatal(err)
			}
		}
		var joiners []ratchettree.LeafIndex
		for range len(vs) / 2 {
			l, err := t.AddLeaf(benchLeaf(randKey(), randKey()))
			if err != nil {
				b.Fatal(err)
			}
			joiners = append(joiners, l)
		}
		base := t.Clone()
		created, err := t.CreateUpdatePath(&ratchettree.PathParams{Sender: 0, Leaf: t.Leaf(0), Signer: f.signers[0],
			GroupContext: f.ctx, Joiners: joiners, Rand: rand.Reader})
		if err != nil {
			b.Fatal(err)
		}
		f.privs[0] = created.Private
		rp, err := base.ApplyUpdatePath(0, created.Path, joiners, f.ctx, f.privs[1], f.pol)
		if err != nil {
			b.Fatal(err)
		}
		f.privs[1] = rp.Private
		t.TreeHash()
	}
	f.tree = t
	return f
}

// tkCount counts the HPKE operations of an UpdatePath: a key derivation
// per path node (and one for the leaf's fresh key), a seal per ciphertext.
func tkCount(p *wire.UpdatePath) (derives, seals int) {
	for _, nd := range p.Nodes {
		seals += nd.Secrets()
	}
	return len(p.Nodes) + 1, seals
}

func (f *tkFixture) update(b *testing.B, t *ratchettree.Tree, sender int) *ratchettree.CreatedPath {
	created, err := t.CreateUpdatePath(&ratchettree.PathParams{Sender: ratchettree.LeafIndex(sender),
		Leaf: t.Leaf(ratchettree.LeafIndex(sender)), Signer: f.signers[sender], GroupContext: f.ctx, Rand: rand.Reader})
	if err != nil {
		b.Fatal(err)
	}
	return created
}

func benchTreeKEM(b *testing.B, n, percent int) {
	f := tkState(b, n, percent)
	u := measureUnits(Suite1())
	sample := f.update(b, f.tree.Clone(), 0)
	enc, err := codec.Marshal(sample.Path)
	if err != nil {
		b.Fatal(err)
	}
	derives, seals := tkCount(sample.Path)
	// Sender: derive every node key, seal to every copath resolution
	// member, sign the new LeafNode.
	sendFloor := float64(derives)*u.derive + float64(seals)*u.seal + u.sign
	// Receiver (the sibling): open one ciphertext, derive and check the
	// keys of the path above it, verify the LeafNode's signature.
	recvFloor := u.open + float64(len(sample.Path.Nodes))*u.derive + u.verify
	b.Run("send", func(b *testing.B) {
		runtime.GC()
		cpu0 := cpuNow()
		for b.Loop() {
			f.update(b, f.tree.Clone(), 0)
		}
		report(b, cpu0, sendFloor, len(enc))
		b.ReportMetric(float64(seals), "hpke-seals")
	})
	b.Run("recv", func(b *testing.B) {
		runtime.GC()
		cpu0 := cpuNow()
		for b.Loop() {
			staged := f.tree.Clone()
			rp, err := staged.ApplyUpdatePath(0, sample.Path, nil, f.ctx, f.privs[1], f.pol)
			if err != nil {
				b.Fatal(err)
			}
			if string(rp.CommitSecret) != string(sample.CommitSecret) {
				b.Fatal("commit secret mismatch")
			}
		}
		report(b, cpu0, recvFloor, 0)
	})
	b.Run("retry", func(b *testing.B) {
		// Leaf 1's commit lost the epoch to leaf 0's: it processes the
		// winner and commits its update again on the new tree.
		var floor float64
		runtime.GC()
		cpu0 := cpuNow()
		for b.Loop() {
			staged := f.tree.Clone()
			rp, err := staged.ApplyUpdatePath(0, sample.Path, nil, f.ctx, f.privs[1], f.pol)
			if err != nil {
				b.Fatal(err)
			}
			_ = rp
			again := f.update(b, staged, 1)
			d, s := tkCount(again.Path)
			floor = recvFloor + float64(d)*u.derive + float64(s)*u.seal + u.sign
		}
		report(b, cpu0, floor, 0)
	})
}

func BenchmarkARTvsTreeKEM(b *testing.B) {
	for _, n := range benchSizes() {
		for _, st := range states {
			b.Run(fmt.Sprintf("n=%d/%s/ART", n, st.name), func(b *testing.B) { benchART(b, n, st.removed) })
			b.Run(fmt.Sprintf("n=%d/%s/TreeKEM", n, st.name), func(b *testing.B) { benchTreeKEM(b, n, st.removed) })
		}
	}
}
