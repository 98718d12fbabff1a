package mls

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
)

// TestSealBuilt: a record built in place into its envelope is byte for byte
// seal(kind, build(f)), whatever the payload's size (the length prefix is 1,
// 2 or 4 octets) and whether the size hint is short, exact or generous; an
// error from f is returned and no record.
func TestSealBuilt(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 16383, 16384, 100_000} {
		body := bytes.Repeat([]byte{0xa5}, n)
		f := func(b *codec.Builder) error {
			b.AddUint32(uint32(n))
			b.AddBytes(body)
			return nil
		}
		payload, err := build(f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := seal(kindCurrent, payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, hint := range []int{0, 16, len(want), 2 * len(want)} {
			got, err := sealBuilt(kindCurrent, hint, f)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("payload %d, hint %d: %d octets (%v), want %d", n, hint, len(got), err, len(want))
			}
		}
	}
	boom := fmt.Errorf("boom")
	if got, err := sealBuilt(kindCurrent, 64, func(b *codec.Builder) error {
		b.AddBytes([]byte("secret"))
		return boom
	}); err != boom || got != nil {
		t.Fatalf("failing builder: %x, %v", got, err)
	}
}

// TestAddTree: the tree written in place is the opaque<V> of its Encode
// with the SHA-256 of those bytes after it, as loading checks.
func TestAddTree(t *testing.T) {
	sig, err := GenerateSignatureKeyPair(X25519_AES128GCM_SHA256_Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup(&Config{}, []byte("tree"), BasicCredential([]byte("alice")), sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := g.st.tree.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := codec.NewBuilder(nil)
	want.AddOpaque(tree)
	digest := sha256.Sum256(tree)
	want.AddBytes(digest[:])
	enc, err := g.st.tree.Encoding()
	if err != nil {
		t.Fatal(err)
	}
	got := codec.NewBuilder(nil)
	addTree(got, enc)
	gb, gerr := got.Bytes()
	wb, _ := want.Bytes()
	if gerr != nil || !bytes.Equal(gb, wb) {
		t.Fatalf("addTree wrote %x (%v), want %x", gb, gerr, wb)
	}
}
