package secrettree

import (
	"testing"

	"github.com/mlskit/mlskit/internal/treemath"
)

// benchLeaves is the ratchet tree of a 10,000-member group: RFC 9420 trees
// have a power-of-two number of leaves, so 10,000 members need 16,384.
const benchLeaves = 16384

// BenchmarkNextFirstMessage is the cost of a leaf's first message in a
// 10,000-member group: deriving the leaf from the nearest kept tree secret
// (the root for the first leaf, log2(n) levels in all), initialising its two
// ratchets and deriving one key and nonce. Leaves are visited in a stride
// that keeps them far apart, so most pay several levels.
func BenchmarkNextFirstMessage(b *testing.B) {
	s := testSuite(b)
	secret := encSecret(s, 1)
	var tr *Tree
	leaf := uint32(0)
	used := uint32(benchLeaves)
	b.ReportAllocs()
	for b.Loop() {
		if used == benchLeaves {
			b.StopTimer()
			tr, _ = New(s, secret, benchLeaves, Config{})
			used = 0
			b.StartTimer()
		}
		// 10007 is odd, so the stride visits every leaf once per tree.
		leaf = (leaf + 10007) % benchLeaves
		if _, _, _, err := tr.Next(treemath.LeafIndex(leaf), Application); err != nil {
			b.Fatal(err)
		}
		used++
	}
}

// BenchmarkNextSteady is a sender's cost per message once its leaf is
// derived: one key, one nonce and one ratchet step.
func BenchmarkNextSteady(b *testing.B) {
	tr := newTree(b, benchLeaves, Config{})
	b.ReportAllocs()
	for b.Loop() {
		_, k, n, err := tr.Next(4321, Application)
		if err != nil {
			b.Fatal(err)
		}
		k.Erase()
		n.Erase()
	}
	b.ReportMetric(float64(len(tr.nodes)), "tree-secrets-held")
}

// BenchmarkGetReordered is a receiver's cost per message when messages
// arrive in pairs swapped (1, 0, 3, 2, ...), so every other key comes from
// the out-of-order window.
func BenchmarkGetReordered(b *testing.B) {
	tr := newTree(b, benchLeaves, Config{})
	g := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tr.Get(77, Application, g^1); err != nil {
			b.Fatal(err)
		}
		g++
	}
}
