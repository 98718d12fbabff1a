package mls

// Test hooks for the persistence tests (persist_test.go, package mls_test):
// the secrets a Group holds, so that a test can look for them in a store's
// raw bytes. Nothing here is part of the API.

import (
	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/secrettree"
	"github.com/mlskit/mlskit/internal/treemath"
	"github.com/mlskit/mlskit/internal/wire"
)

// EpochSecrets returns copies of the current epoch's nine secrets (RFC 9420,
// Section 8), sender_data_secret first.
func EpochSecrets(g *Group) [][]byte {
	var out [][]byte
	for _, f := range []([]byte){g.st.keys.SenderData, g.st.keys.Encryption, g.st.keys.Exporter, g.st.keys.External,
		g.st.keys.Confirmation, g.st.keys.Membership, g.st.keys.Resumption, g.st.keys.Authenticator, g.st.keys.Init} {
		out = append(out, append([]byte(nil), f...))
	}
	return out
}

// Ratchet describes one ratchet of a leaf of the current epoch's secret
// tree: its next generation, its current ratchet secret and its kept keys
// (generation -> key and nonce).
type Ratchet struct {
	Next   uint64
	Secret []byte
	Kept   map[uint32][2][]byte
}

// RatchetOf returns leaf's application or handshake ratchet in g's current
// epoch, or ok == false if the leaf's ratchets are not initialised.
func RatchetOf(g *Group, leaf LeafIndex, application bool) (r Ratchet, ok bool) {
	b := codec.NewBuilder(nil)
	if err := g.st.secrets.MarshalLeaf(b, treemath.LeafIndex(leaf)); err != nil {
		return r, false
	}
	enc, _ := b.Bytes()
	rd := codec.NewReader(enc)
	var l uint32
	rd.ReadUint32(&l)
	for i := range 2 {
		var x Ratchet
		var present bool
		x.Kept = map[uint32][2][]byte{}
		rd.ReadUint64(&x.Next)
		rd.ReadOptional(&present)
		if present {
			rd.ReadOpaque(&x.Secret)
		}
		rd.ReadList(func(r *codec.Reader) bool {
			var gen uint32
			var k, n []byte
			r.ReadUint32(&gen)
			r.ReadOpaque(&k)
			r.ReadOpaque(&n)
			x.Kept[gen] = [2][]byte{k, n}
			return true
		})
		if (i == 1) == application {
			r = x
		}
	}
	return r, true
}

// SentGeneration is the next application generation g's own ratchet will
// use: how many application messages it sent in this epoch.
func SentGeneration(g *Group) uint64 {
	return g.st.secrets.NextGeneration(g.st.me, secrettree.Application)
}

// PastEpochs lists the epochs g keeps for late messages, newest first.
func PastEpochs(g *Group) []uint64 {
	var out []uint64
	for _, p := range g.past {
		out = append(out, p.epoch)
	}
	return out
}

// PrivateCiphertextLen returns the length of a PrivateMessage's ciphertext
// field (the encrypted, padded PrivateMessageContent), or -1.
func PrivateCiphertextLen(msg []byte) int {
	m, err := wire.UnmarshalMLSMessage(msg)
	if err != nil || m.PrivateMessage == nil {
		return -1
	}
	return len(m.PrivateMessage.Ciphertext)
}
