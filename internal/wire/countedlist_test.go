package wire

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

// TestCountedListMatchesDecodeList: decodeCountedList (the counting pass,
// then one allocation) accepts and refuses exactly what decodeList does, at
// the same offset and with the same reason, and decodes the same
// ciphertexts: well-formed lists, truncated ones, a length running past the
// input, trailing garbage inside the vector, and random bytes.
func TestCountedListMatchesDecodeList(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var inputs [][]byte
	for range 2000 {
		var body []byte
		for range r.IntN(40) {
			kem := make([]byte, r.IntN(40))
			ct := make([]byte, r.IntN(70))
			body = append(append(append(append(body, byte(len(kem))), kem...), byte(len(ct))), ct...)
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
	for i, in := range inputs {
		var f1, f2 failure
		d1 := decoder{b: in, fail: &f1}
		d2 := decoder{b: in, fail: &f2}
		var a, b []HPKECiphertext
		ok1 := decodeList(&d1, &a, (*HPKECiphertext).decode)
		ok2 := decodeCountedList(&d2, &b, (*HPKECiphertext).decode)
		if ok1 != ok2 || f1 != f2 || d1.off != d2.off {
			t.Fatalf("input %d (%x): decodeList ok=%v %+v at %d, counted ok=%v %+v at %d", i, in, ok1, f1, d1.off, ok2, f2, d2.off)
		}
		if ok1 && !reflect.DeepEqual(a, b) {
			t.Fatalf("input %d: lists differ", i)
		}
		if ok2 && len(b) != cap(b) {
			t.Fatalf("input %d: %d elements in a slice of capacity %d", i, len(b), cap(b))
		}
	}
}
