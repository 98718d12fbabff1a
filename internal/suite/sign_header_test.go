package suite

import (
	"strings"
	"testing"
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
