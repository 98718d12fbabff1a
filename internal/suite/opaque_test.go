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

// TestHashOpaques: hashing fields as opaque<V> without encoding them gives
// the hash of their encoding, in every suite, for fields on both sides of
// each varint boundary.
func TestHashOpaques(t *testing.T) {
	for _, id := range Supported() {
		s, err := Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 63, 64, 16383, 16384} {
			a, b := strings.Repeat("a", n), strings.Repeat("b", 32)
			var enc []byte
			for _, f := range []string{a, b, ""} {
				enc = codec.AppendVarint(enc, uint64(len(f)), nil)
				enc = append(enc, f...)
			}
			if got, want := s.HashOpaques([]byte(a), []byte(b), nil), s.Hash(enc); !bytes.Equal(got, want) {
				t.Fatalf("%v, field of %d octets: HashOpaques differs from the hash of the encoding", id, n)
			}
		}
	}
}
