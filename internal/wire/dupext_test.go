package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

// extList encodes extensions<V> with one empty-data extension per type.
func extList(types ...uint16) []byte {
	var body []byte
	for _, t := range types {
		body = append(body, byte(t>>8), byte(t), 0)
	}
	return append([]byte{byte(len(body))}, body...)
}

// TestRejectDuplicateExtension: issue 12, finding 8. Every extension list
// with two extensions of one type is malformed (RFC 9420, Section 13.4),
// in short lists and in long ones; lists of distinct types still decode.
func TestRejectDuplicateExtension(t *testing.T) {
	long := make([]uint16, 0, 20)
	for i := range 20 {
		long = append(long, uint16(100+i))
	}
	for _, c := range []struct {
		name  string
		types []uint16
		dup   bool
	}{
		{"two of one type", []uint16{3, 3}, true},
		{"GREASE twice", []uint16{0x0A0A, 5, 0x0A0A}, true},
		{"long list, duplicate at the end", append(append([]uint16(nil), long...), 100), true},
		{"distinct", []uint16{1, 2, 3, 0x0A0A}, false},
		{"long list, distinct", long, false},
	} {
		enc := extList(c.types...)
		var x GroupContextExtensions
		err := decodeAll(&x, enc, x.decode)
		if !c.dup {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		wantReject(t, new(GroupContextExtensions), enc, 0, "duplicate extension type")
		exts := make([]Extension, len(c.types))
		for i, ty := range c.types {
			exts[i] = Extension{ExtensionType: ExtensionType(ty)}
		}
		if _, err := codec.Marshal(&GroupContextExtensions{Extensions: exts}); !errors.Is(err, errDuplicateExtension) {
			t.Errorf("%s: Marshal: %v", c.name, err)
		}
	}
	// The same inside a LeafNode: each struct's extension list goes
	// through the same check.
	leaf := sampleLeaf(LeafNodeSourceUpdate)
	leaf.Extensions = []Extension{{ExtensionType: 0x7e57}, {ExtensionType: 0x7e57}}
	if _, err := codec.Marshal(&leaf); !errors.Is(err, errDuplicateExtension) {
		t.Errorf("LeafNode Marshal: %v", err)
	}
	leaf.Extensions = []Extension{{ExtensionType: 0x7e57}, {ExtensionType: 0x7e58}}
	enc := mustMarshal(t, &leaf)
	// Turn type 0x7e58 into 0x7e57 in place.
	i := bytes.Index(enc, []byte{0x7e, 0x58, 0x00})
	if i < 0 {
		t.Fatal("extension not found")
	}
	enc[i+1] = 0x57
	if de := decodeErr(t, new(LeafNode), enc); de.Reason != "duplicate extension type" {
		t.Errorf("LeafNode: %v", de)
	}
}
