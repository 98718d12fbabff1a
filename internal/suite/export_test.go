package suite_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mlskit/mlskit/internal/suite"
)

// TestHPKEExport: both sides of an HPKE export agree for every suite, as
// external init uses it (RFC 9420, Section 8.3); another key, context or info
// gives another secret; malformed keys and encapsulations fail with the
// sentinels. The X448 exporter is checked against RFC 9180 vectors in
// x448_test.go.
func TestHPKEExport(t *testing.T) {
	forEach(t, func(t *testing.T, s *suite.Suite) {
		const label = "MLS 1.0 external init secret"
		priv, pub, err := s.GenerateKEMKey(seeded(12))
		if err != nil {
			t.Fatal(err)
		}
		enc, a, err := s.HPKEExportSender(pub, nil, []byte(label), s.HashSize())
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.HPKEExportReceiver(priv, enc, nil, []byte(label), s.HashSize())
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != s.HashSize() || !bytes.Equal(a, b) {
			t.Fatalf("exports differ: %x, %x", a, b)
		}
		other, _, _ := s.GenerateKEMKey(seeded(13))
		if c, err := s.HPKEExportReceiver(other, enc, nil, []byte(label), s.HashSize()); err == nil && bytes.Equal(a, c) {
			t.Error("export with another key agrees")
		}
		if c, _ := s.HPKEExportReceiver(priv, enc, nil, []byte("other"), s.HashSize()); bytes.Equal(a, c) {
			t.Error("export with another context agrees")
		}
		if c, _ := s.HPKEExportReceiver(priv, enc, []byte("info"), []byte(label), s.HashSize()); bytes.Equal(a, c) {
			t.Error("export with another info agrees")
		}
		if _, err := s.HPKEExportReceiver(priv, enc[1:], nil, []byte(label), s.HashSize()); !errors.Is(err, suite.ErrDecrypt) {
			t.Errorf("short enc: %v, want ErrDecrypt", err)
		}
		if _, err := s.HPKEExportReceiver(append(bytes.Clone(priv), 0), enc, nil, []byte(label), s.HashSize()); !errors.Is(err, suite.ErrInvalidKey) {
			t.Errorf("long priv: %v, want ErrInvalidKey", err)
		}
		if _, _, err := s.HPKEExportSender(pub[1:], nil, []byte(label), s.HashSize()); !errors.Is(err, suite.ErrInvalidKey) {
			t.Errorf("short pub: %v, want ErrInvalidKey", err)
		}
		enc2, a2, _ := s.HPKEExportSender(pub, nil, []byte(label), s.HashSize())
		if bytes.Equal(enc, enc2) || bytes.Equal(a, a2) {
			t.Error("two exports are equal: the encapsulation is not randomized")
		}
	})
}
