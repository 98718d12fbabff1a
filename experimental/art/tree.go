package art

import (
	"crypto/ecdh"
	"math/bits"
	"sync/atomic"

	"github.com/mlskit/mlskit/internal/suite"
)

// Labels for ExpandWithLabel and SignWithLabel, all in this one block.
const (
	labelNode    = "art node"    // ι: DH output to node secret
	labelLeaf    = "art leaf"    // setup and add: DH output to leaf secret
	labelStage   = "art stage"   // tree key into the stage key chain
	labelWelcome = "art welcome" // the key that seals the stage key for a new member
	labelMessage = "art message" // signatures on setup, update, add, remove
)

const keySize = 32 // X25519 scalars and points; SHA-256 outputs

// OpCount counts the asymmetric operations this package performed, so
// benchmarks can compare measured time with a floor of counted operations.
type OpCount struct {
	DH       int64 // X25519 with a peer's public key
	BaseMult int64 // X25519 with the base point (public key from secret)
	Sign     int64
	Verify   int64
}

var ops struct{ dh, base, sign, verify atomic.Int64 }

// Ops returns the operations counted since the process started.
func Ops() OpCount {
	return OpCount{DH: ops.dh.Load(), BaseMult: ops.base.Load(), Sign: ops.sign.Load(), Verify: ops.verify.Load()}
}

// Sub returns o - p.
func (o OpCount) Sub(p OpCount) OpCount {
	return OpCount{o.DH - p.DH, o.BaseMult - p.BaseMult, o.Sign - p.Sign, o.Verify - p.Verify}
}

// nodeKey makes the X25519 key of a secret: one scalar multiplication by
// the base point, which crypto/ecdh performs whenever a private key is
// made, so a sender gets the node's public key with it.
func nodeKey(sec []byte) *ecdh.PrivateKey {
	ops.base.Add(1)
	k, err := ecdh.X25519().NewPrivateKey(sec)
	if err != nil {
		panic("art: X25519 private key of the wrong size") // secrets are always keySize bytes
	}
	return k
}

// dh is X25519(k, pub); it fails for a malformed or low-order peer key.
func dh(k *ecdh.PrivateKey, pub []byte) ([]byte, error) {
	ops.dh.Add(1)
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return k.ECDH(p)
}

// pubOf is the X25519 public key of a secret.
func pubOf(sec []byte) []byte { return nodeKey(sec).PublicKey().Bytes() }

// iota maps a DH output to the next node's secret (the paper's ι).
func iota(s *suite.Suite, shared []byte) []byte {
	return s.ExpandWithLabel(shared, labelNode, nil, keySize)
}

// pow2Below is the largest power of two strictly below k (k >= 2): the
// number of leaves in the left subtree of a node over k leaves.
func pow2Below(k int) int { return 1 << (bits.Len(uint(k-1)) - 1) }

// nodeIndex numbers the node over leaves [lo, hi): leaves are 2i, a parent
// is 2m-1 where m is its split point.
func nodeIndex(lo, hi int) int {
	if hi-lo == 1 {
		return 2 * lo
	}
	return 2*(lo+pow2Below(hi-lo)) - 1
}

// step is one level of a leaf's path: node is the parent, child the node
// below it on the path, sibling the other child (on the copath).
type step struct{ node, child, sibling int }

// pathOf returns the steps from leaf up to the root of a tree of n leaves,
// lowest first. Its length is the leaf's depth.
func pathOf(n, leaf int) []step {
	var down []step
	lo, hi := 0, n
	for hi-lo > 1 {
		m := lo + pow2Below(hi-lo)
		st := step{node: nodeIndex(lo, hi)}
		if leaf < m {
			st.child, st.sibling = nodeIndex(lo, m), nodeIndex(m, hi)
			hi = m
		} else {
			st.child, st.sibling = nodeIndex(m, hi), nodeIndex(lo, m)
			lo = m
		}
		down = append(down, st)
	}
	for i, j := 0, len(down)-1; i < j; i, j = i+1, j-1 {
		down[i], down[j] = down[j], down[i]
	}
	return down
}

// rootIndex is the root's node index in a tree of n leaves.
func rootIndex(n int) int { return nodeIndex(0, n) }

// pathSecrets computes a leaf's secret chain up to the root from its leaf
// secret and the public keys of the copath: secs[0] is the leaf secret,
// secs[i] the secret of steps[i-1].node; pubs[i] is the public key of the
// node secs[i] belongs to, for every node but the root. copath gives the
// public key of a copath node.
func pathSecrets(s *suite.Suite, leafSecret []byte, steps []step, copath func(int) []byte) (secs, pubs [][]byte, err error) {
	secs = make([][]byte, 0, len(steps)+1)
	pubs = make([][]byte, 0, len(steps)+1)
	cur := leafSecret
	secs = append(secs, cur)
	for _, st := range steps {
		k := nodeKey(cur)
		pubs = append(pubs, k.PublicKey().Bytes())
		shared, err := dh(k, copath(st.sibling))
		if err != nil {
			return nil, nil, err
		}
		cur = iota(s, shared)
		secs = append(secs, cur)
	}
	if len(steps) == 0 {
		pubs = append(pubs, pubOf(cur))
	}
	return secs, pubs, nil
}
