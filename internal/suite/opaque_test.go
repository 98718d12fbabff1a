package suite

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

// TestSignContentHeaderSize: the size computed without encoding is the
// length AppendSignContentHeader appends, for labels and contents on both
// sides of each varint boundary (RFC 9420, Section 2.1.2).
func TestSignContentHeaderSize(t *testing.T) {
	for _, ll := range []int{0, 1, 55, 56, 100} {
		label := strings.Repeat("l", ll)
		for _, n := range []int{0, 63, 64, 16383, 16384, 1<<30 - 1} {
			if got, want := SignContentHeaderSize(label, n), len(AppendSignContentHeader(nil, label, n)); got != want {
				t.Fatalf("label %d, content %d: size %d, appended %d", ll, n, got, want)
			}
		}
	}
}

// TestHashWith: hashing fields as they are written gives the hash of their
// encoding, in every suite, for opaque<V> fields on both sides of each
// varint boundary mixed with small fields (gathered before they reach the
// digest) and large ones (written through).
func TestHashWith(t *testing.T) {
	for _, id := range Supported() {
		s, err := Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 63, 64, 16383, 16384} {
			a, b := []byte(strings.Repeat("a", n)), []byte(strings.Repeat("b", 32))
			enc := []byte{7, 0, 0, 1, 2}
			for _, f := range [][]byte{a, b, nil} {
				enc = codec.AppendVarint(enc, uint64(len(f)), nil)
				enc = append(enc, f...)
			}
			enc = append(enc, a...)
			got := s.HashWith(func(h *HashInput) {
				h.Uint8(7)
				h.Uint32(258)
				h.Opaque(a)
				h.Opaque(b)
				h.Opaque(nil)
				h.Write(a)
			})
			if want := s.Hash(enc); !bytes.Equal(got, want) {
				t.Fatalf("%v, field of %d octets: HashWith differs from the hash of the encoding", id, n)
			}
		}
		if got := s.HashWith(func(h *HashInput) { h.Varint(1 << 30) }); !bytes.Equal(got, s.Hash(nil)) {
			t.Fatalf("%v: a length with no varint does not give Hash of nothing", id)
		}
	}
}
