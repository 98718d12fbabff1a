package suite_test

import (
	"bytes"
	crand "crypto/rand"
	"testing"

	"github.com/mlskit/mlskit/internal/suite"
)

// TestHPKEExport checks that both sides of an HPKE export agree, for every
// suite, and that a different key disagrees.
func TestHPKEExport(t *testing.T) {
	for _, id := range suite.Supported() {
		s, err := suite.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub, err := s.GenerateKEMKey(crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		enc, a, err := s.HPKEExportSender(pub, nil, []byte("MLS 1.0 external init secret"), s.HashSize())
		if err != nil {
			t.Fatalf("%v: %v", id, err)
		}
		b, err := s.HPKEExportReceiver(priv, enc, nil, []byte("MLS 1.0 external init secret"), s.HashSize())
		if err != nil {
			t.Fatalf("%v: %v", id, err)
		}
		if len(a) != s.HashSize() || !bytes.Equal(a, b) {
			t.Fatalf("%v: exports differ", id)
		}
		other, _, _ := s.GenerateKEMKey(crand.Reader)
		c, err := s.HPKEExportReceiver(other, enc, nil, []byte("MLS 1.0 external init secret"), s.HashSize())
		if err == nil && bytes.Equal(a, c) {
			t.Fatalf("%v: export with another key agrees", id)
		}
	}
}
