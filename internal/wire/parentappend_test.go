package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

// TestParentNodeAppendTo: the Builder-free encoding of a ParentNode is
// Marshal's, byte for byte, and EncodedLen is its length, for key, hash and
// unmerged-leaf lengths on both sides of every varint size boundary.
func TestParentNodeAppendTo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lens := []int{0, 1, 32, 63, 64, 65, 133, 16383, 16384}
	for _, kl := range lens {
		for _, hl := range lens {
			for _, nl := range []int{0, 1, 15, 16, 17, 4095, 4096, 4097} {
				p := &ParentNode{EncryptionKey: make([]byte, kl), ParentHash: make([]byte, hl)}
				for i := range p.EncryptionKey {
					p.EncryptionKey[i] = byte(r.Uint32())
				}
				for i := range p.ParentHash {
					p.ParentHash[i] = byte(r.Uint32())
				}
				for range nl {
					p.UnmergedLeaves = append(p.UnmergedLeaves, r.Uint32())
				}
				want, err := codec.Marshal(p)
				if err != nil {
					t.Fatal(err)
				}
				var aerr error
				got := p.AppendTo([]byte("prefix"), &aerr)
				if aerr != nil || !bytes.Equal(got[6:], want) || string(got[:6]) != "prefix" {
					t.Fatalf("key %d, hash %d, %d leaves: AppendTo differs from Marshal (%v)", kl, hl, nl, aerr)
				}
				if p.EncodedLen() != len(want) {
					t.Fatalf("key %d, hash %d, %d leaves: EncodedLen %d, encoding %d", kl, hl, nl, p.EncodedLen(), len(want))
				}
			}
		}
	}
}
