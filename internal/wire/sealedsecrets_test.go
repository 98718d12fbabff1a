package wire

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

// TestSealedSecretsMatchDecodeList: an UpdatePathNode keeps its
// ciphertexts as received, after checking each where it lies (one-byte
// lengths in opaque's fast case, any other through ParseVarint). It accepts and
// refuses exactly what decodeList does, at the same offset and with the
// same reason, gives the same ciphertexts through Secret and AllSecrets,
// none of which can be appended to over the input, and encodes back to
// the bytes it came from: well-formed lists (lengths of one byte and of
// two), truncated ones, lengths not minimal or with prefix 0b11, a length
// running past the input, trailing garbage inside the vector, and random
// bytes.
func TestSealedSecretsMatchDecodeList(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var inputs [][]byte
	for range 2000 {
		var body []byte
		for range r.IntN(40) {
			kem := make([]byte, r.IntN(40))
			ct := make([]byte, r.IntN(70))
			// Lengths of 64 and more take two bytes: the general path.
			body = append(codec.AppendVarint(body, uint64(len(kem)), nil), kem...)
			body = append(codec.AppendVarint(body, uint64(len(ct)), nil), ct...)
		}
		vec := append(codec.AppendVarint(nil, uint64(len(body)), nil), body...)
		inputs = append(inputs, vec)
		if len(vec) > 1 {
			inputs = append(inputs, vec[:r.IntN(len(vec))]) // truncated
			bad := append([]byte(nil), vec...)
			bad[len(bad)-1-r.IntN(len(body)+1)] ^= byte(1 + r.IntN(255)) // a length or byte changed
			inputs = append(inputs, bad)
		}
		garbage := make([]byte, r.IntN(64))
		for i := range garbage {
			garbage[i] = byte(r.Uint32())
		}
		inputs = append(inputs, garbage)
	}
	// Lengths the decoder refuses: not minimal (5 in two bytes, in either
	// field), prefix 0b11, and a first field whose one-byte length runs
	// past the vector.
	for _, body := range [][]byte{
		{0x40, 5, 1, 2, 3, 4, 5, 1, 9},
		{1, 9, 0x40, 5, 1, 2, 3, 4, 5},
		{0xc0, 0, 0, 1, 9},
		{1, 9, 2, 1, 2, 60, 1},
	} {
		inputs = append(inputs, append([]byte{byte(len(body))}, body...))
	}
	key := []byte{3, 'k', 'e', 'y'} // the node's encryption_key, opaque<V>
	for i, in := range inputs {
		var f1, f2 failure
		d1 := decoder{b: in, fail: &f1}
		var a []HPKECiphertext
		ok1 := decodeList(&d1, &a, (*HPKECiphertext).decode)
		node := append(slices.Clone(key), in...)
		d2 := decoder{b: node, fail: &f2}
		var n UpdatePathNode
		ok2 := n.decode(&d2)
		if f2.set {
			f2.off -= len(key)
		}
		if ok1 != ok2 || f1 != f2 || d1.off != d2.off-len(key) {
			t.Fatalf("input %d (%x): decodeList ok=%v %+v at %d, UpdatePathNode ok=%v %+v at %d", i, in, ok1, f1, d1.off, ok2, f2, d2.off-len(key))
		}
		if !ok1 {
			continue
		}
		if n.Secrets() != len(a) {
			t.Fatalf("input %d: %d secrets, decodeList %d", i, n.Secrets(), len(a))
		}
		all := n.AllSecrets()
		if len(a) > 0 && !reflect.DeepEqual(a, all) {
			t.Fatalf("input %d: lists differ", i)
		}
		for j := range all {
			if cap(all[j].KEMOutput) != len(all[j].KEMOutput) || cap(all[j].Ciphertext) != len(all[j].Ciphertext) {
				t.Fatalf("input %d: secret %d can be appended to over the input", i, j)
			}
		}
		if _, ok := n.Secret(len(a)); ok {
			t.Fatalf("input %d: a secret past the last", i)
		}
		if _, ok := n.Secret(-1); ok {
			t.Fatalf("input %d: a secret before the first", i)
		}
		var b codec.Builder
		n.Marshal(&b)
		if enc, err := b.Bytes(); err != nil || !bytes.Equal(enc, node[:len(node)-len(d2.b)]) {
			t.Fatalf("input %d: encodes back to %x, not %x", i, enc, node[:len(node)-len(d2.b)])
		}
	}
}
