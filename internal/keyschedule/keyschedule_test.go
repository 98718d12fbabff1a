package keyschedule

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/mlskit/mlskit/internal/suite"
	"github.com/mlskit/mlskit/internal/wire"
)

func testSuite(t testing.TB) *suite.Suite {
	t.Helper()
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fill(n int, seed byte) Secret {
	b := make(Secret, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func TestSecretRedacted(t *testing.T) {
	sec := Secret{0xde, 0xad, 0xbe, 0xef}
	const raw = "deadbeef"
	type holder struct {
		Name string
		Key  Secret
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%08x", "% x"} {
		for _, v := range []any{sec, &holder{"k", sec}, holder{"k", sec}, []Secret{sec}} {
			out := fmt.Sprintf(f, v)
			if strings.Contains(strings.ToLower(out), raw) || strings.Contains(out, "222") || !strings.Contains(out, "[redacted]") {
				t.Errorf("Sprintf(%q, %T) = %q", f, v, out)
			}
		}
	}
	if s := sec.String(); s != "[redacted]" {
		t.Errorf("String() = %q", s)
	}
	if err := fmt.Errorf("wrapped %v", sec); strings.Contains(err.Error(), raw) {
		t.Errorf("error %q", err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", sec)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "key", sec)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "holder", holder{"k", sec})
	if strings.Contains(buf.String(), raw) || strings.Contains(buf.String(), "3q2+7w") || strings.Count(buf.String(), "[redacted]") != 3 {
		t.Errorf("slog output %q", buf.String())
	}
	// The bytes are still there for code that uses them.
	if hex.EncodeToString(sec) != raw {
		t.Error("Secret lost its bytes")
	}
}

func TestSecretEraseAndClone(t *testing.T) {
	a := Secret{1, 2, 3}
	b := a.Clone()
	a.Erase()
	if !bytes.Equal(a, []byte{0, 0, 0}) || !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("Erase/Clone: a=%v b=%v", []byte(a), []byte(b))
	}
	Secret(nil).Erase()
	if Secret(nil).Clone() != nil {
		t.Fatal("Clone(nil) != nil")
	}
}

// A new member, starting from the joiner_secret in GroupSecrets, reaches the
// same epoch as the committer.
func TestWelcomePathMatchesMemberPath(t *testing.T) {
	s := testSuite(t)
	gc := []byte("group context")
	psk := fill(s.HashSize(), 3)
	j := NewJoinerSecret(s, fill(s.HashSize(), 1), fill(s.HashSize(), 2), gc)
	m := j.WithPSK(psk)
	e := m.Epoch(gc)

	jj, err := JoinerSecretFromBytes(s, j.Secret())
	if err != nil {
		t.Fatal(err)
	}
	mm := jj.WithPSK(psk)
	if !bytes.Equal(m.WelcomeSecret(), mm.WelcomeSecret()) {
		t.Fatal("welcome_secret differs")
	}
	k1, n1 := m.WelcomeKeyNonce()
	k2, n2 := WelcomeKeyNonce(s, mm.WelcomeSecret())
	if !bytes.Equal(k1, k2) || !bytes.Equal(n1, n2) || len(k1) != s.KeySize() || len(n1) != s.NonceSize() {
		t.Fatal("welcome key/nonce differ")
	}
	ee := mm.Epoch(gc)
	if !bytes.Equal(e.Init, ee.Init) || !bytes.Equal(e.Encryption, ee.Encryption) {
		t.Fatal("epoch secrets differ")
	}
	// The GroupContext is bound in.
	if e2 := mm.Epoch([]byte("other context")); bytes.Equal(e2.Init, e.Init) {
		t.Fatal("epoch does not depend on the GroupContext")
	}
	if _, err := JoinerSecretFromBytes(s, make([]byte, 5)); err == nil {
		t.Fatal("short joiner_secret accepted")
	}
}

// Absent commit_secret and psk_secret are the all-zero vector, not empty.
func TestZeroDefaults(t *testing.T) {
	s := testSuite(t)
	zero := make(Secret, s.HashSize())
	init := fill(s.HashSize(), 1)
	a := NewJoinerSecret(s, init, nil, []byte("gc"))
	b := NewJoinerSecret(s, init, zero, []byte("gc"))
	if !bytes.Equal(a.Secret(), b.Secret()) {
		t.Fatal("nil commit_secret is not the zero vector")
	}
	ps, err := PSKSecret(s, nil)
	if err != nil || !bytes.Equal(ps, zero) {
		t.Fatal("psk_secret with no PSKs is not the zero vector")
	}
	if !bytes.Equal(a.WithPSK(nil).WelcomeSecret(), a.WithPSK(ps).WelcomeSecret()) {
		t.Fatal("nil psk_secret is not the zero vector")
	}
	// And an empty IKM really would differ, so the substitution matters.
	if bytes.Equal(s.Extract(init, nil), s.Extract(init, zero)) {
		t.Fatal("test is vacuous")
	}
}

func TestEpochSecretsDistinct(t *testing.T) {
	s := testSuite(t)
	e := EpochFromSecret(s, fill(s.HashSize(), 9))
	all := []Secret{e.SenderData, e.Encryption, e.Exporter, e.External, e.Confirmation,
		e.Membership, e.Resumption, e.Authenticator, e.Init}
	seen := map[string]bool{}
	for i, v := range all {
		if len(v) != s.HashSize() || seen[string(v)] {
			t.Fatalf("secret %d repeated or wrong length", i)
		}
		seen[string(v)] = true
	}
	e.Erase()
	for i, v := range all {
		if !bytes.Equal(v, make([]byte, len(v))) {
			t.Fatalf("secret %d not erased", i)
		}
	}
}

func TestExport(t *testing.T) {
	s := testSuite(t)
	e := EpochFromSecret(s, fill(s.HashSize(), 4))
	a, err := e.Export("label", []byte("ctx"), 42)
	if err != nil || len(a) != 42 {
		t.Fatalf("Export: %d bytes, %v", len(a), err)
	}
	for _, other := range []struct {
		label string
		ctx   string
	}{{"label2", "ctx"}, {"label", "ctx2"}} {
		b, _ := e.Export(other.label, []byte(other.ctx), 42)
		if bytes.Equal(a, b) {
			t.Fatalf("Export ignores %+v", other)
		}
	}
	for _, n := range []int{-1, 255*s.HashSize() + 1, 1 << 20} {
		if _, err := e.Export("x", nil, n); err == nil {
			t.Errorf("Export accepted length %d", n)
		}
	}
	if _, err := e.Export("x", nil, 255*s.HashSize()); err != nil {
		t.Errorf("Export refused the maximum length: %v", err)
	}
}

func TestConfirmationTag(t *testing.T) {
	s := testSuite(t)
	e := EpochFromSecret(s, fill(s.HashSize(), 5))
	cth := []byte("confirmed transcript hash")
	tag := e.ConfirmationTag(cth)
	if !e.VerifyConfirmationTag(cth, tag) {
		t.Fatal("own tag does not verify")
	}
	bad := append([]byte(nil), tag...)
	bad[len(bad)-1] ^= 1
	if e.VerifyConfirmationTag(cth, bad) || e.VerifyConfirmationTag([]byte("other"), tag) ||
		e.VerifyConfirmationTag(cth, tag[:len(tag)-1]) {
		t.Fatal("a wrong tag verifies")
	}
}

func TestSenderDataSample(t *testing.T) {
	s := testSuite(t)
	e := EpochFromSecret(s, fill(s.HashSize(), 6))
	long := fill(100, 1)
	k1, n1 := e.SenderDataKeyNonce(long)
	// Only the first Nh bytes count.
	long2 := append(Secret(nil), long...)
	long2[99] ^= 1
	k2, n2 := e.SenderDataKeyNonce(long2)
	if !bytes.Equal(k1, k2) || !bytes.Equal(n1, n2) {
		t.Fatal("bytes past the sample change the sender data key")
	}
	long2[s.HashSize()-1] ^= 1
	if k3, _ := e.SenderDataKeyNonce(long2); bytes.Equal(k1, k3) {
		t.Fatal("the sample's last byte does not matter")
	}
	// A short ciphertext is used whole.
	if k4, _ := e.SenderDataKeyNonce(long[:5]); len(k4) != s.KeySize() || bytes.Equal(k4, k1) {
		t.Fatal("short ciphertext")
	}
}

func TestTranscriptRejectsNonCommit(t *testing.T) {
	s := testSuite(t)
	ac := &wire.AuthenticatedContent{
		WireFormat: wire.WireFormatPublicMessage,
		Content:    wire.FramedContent{ContentType: wire.ContentTypeApplication, ApplicationData: []byte("hi")},
	}
	if _, _, err := TranscriptHashes(s, nil, ac); !errors.Is(err, ErrNotCommit) {
		t.Fatalf("error %v, want ErrNotCommit", err)
	}
}

func TestPSKSecretOrderMatters(t *testing.T) {
	s := testSuite(t)
	p := func(id string) PSK {
		return PSK{ID: wire.PreSharedKeyID{PSKType: wire.PSKTypeExternal, PSKID: []byte(id), PSKNonce: fill(s.HashSize(), 1)},
			Value: fill(s.HashSize(), id[0])}
	}
	a, _ := PSKSecret(s, []PSK{p("a"), p("b")})
	b, _ := PSKSecret(s, []PSK{p("b"), p("a")})
	if bytes.Equal(a, b) {
		t.Fatal("PSK order does not matter")
	}
}

func BenchmarkEpoch(b *testing.B) {
	for _, id := range []suite.ID{suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519, suite.MLS256DHKEMP521AES256GCMSHA512P521} {
		s, _ := suite.Lookup(id)
		b.Run(id.String(), func(b *testing.B) {
			init, commit, psk := fill(s.HashSize(), 1), fill(s.HashSize(), 2), fill(s.HashSize(), 3)
			gc := make([]byte, 120) // a GroupContext with SHA-256 hashes and no extensions is about this long
			b.ReportAllocs()
			for b.Loop() {
				j := NewJoinerSecret(s, init, commit, gc)
				m := j.WithPSK(psk)
				w := m.WelcomeSecret()
				e := m.Epoch(gc)
				w.Erase()
				m.Erase()
				j.Erase()
				e.Erase()
			}
		})
	}
}
