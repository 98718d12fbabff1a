package wire_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlskit/mlskit/internal/codec"
	"github.com/mlskit/mlskit/internal/conformance"
	"github.com/mlskit/mlskit/internal/wire"
)

// messageVectors reads messages.json from the official vector directory (the
// vectors are never copied into this repository). It returns nil when the
// directory is absent, so fuzzing still runs from the built-in seeds.
func messageVectors(tb testing.TB) []map[string]string {
	tb.Helper()
	dir, err := conformance.Dir()
	if err != nil {
		if os.Getenv("MLS_REQUIRE_VECTORS") == "1" {
			tb.Fatal(err)
		}
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "messages.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var cases []map[string]string
	if err := json.Unmarshal(data, &cases); err != nil {
		tb.Fatal(err)
	}
	return cases
}

// seeds returns the vector byte strings of the given fields; an MLSMessage
// field named with a trailing "/body" is unwrapped (version and wire format
// dropped) to seed a bare struct.
func seeds(tb testing.TB, fields ...string) [][]byte {
	var out [][]byte
	for _, c := range messageVectors(tb) {
		for _, f := range fields {
			name, unwrap := f, false
			if n := len(f) - len("/body"); n > 0 && f[n:] == "/body" {
				name, unwrap = f[:n], true
			}
			b, err := hex.DecodeString(c[name])
			if err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
			if unwrap {
				b = b[4:]
			}
			out = append(out, b)
		}
	}
	return out
}

// checkRoundTrip asserts decode ok ⇒ encode(decode(b)) == b, and that a
// struct which keeps its received bytes keeps exactly b.
func checkRoundTrip(t *testing.T, data []byte, m codec.Marshaler, err error) {
	if err != nil {
		return
	}
	enc, merr := codec.Marshal(m)
	if merr != nil {
		t.Fatalf("decoded but does not re-encode: %v", merr)
	}
	if !bytes.Equal(enc, data) {
		t.Fatalf("re-encoding differs:\n in  %x\n out %x", data, enc)
	}
	if r, ok := m.(interface{ Raw() []byte }); ok && !bytes.Equal(r.Raw(), data) {
		t.Fatalf("Raw() differs from the input")
	}
}

func FuzzMLSMessage(f *testing.F) {
	for _, s := range seeds(f, "mls_welcome", "mls_group_info", "mls_key_package",
		"public_message_application", "public_message_proposal", "public_message_commit", "private_message") {
		f.Add(s)
	}
	f.Add([]byte{0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := wire.UnmarshalMLSMessage(data)
		checkRoundTrip(t, data, m, err)
		if err == nil && m.PublicMessage != nil {
			// The AuthenticatedContent keeps the received content bytes.
			ac := m.PublicMessage.AuthenticatedContent()
			enc, err := codec.Marshal(ac)
			if err != nil || !bytes.Equal(enc, ac.Raw()) {
				t.Fatalf("AuthenticatedContent: %v, raw %x, encoding %x", err, ac.Raw(), enc)
			}
		}
	})
}

func FuzzKeyPackage(f *testing.F) {
	for _, s := range seeds(f, "mls_key_package/body") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kp, err := wire.UnmarshalKeyPackage(data)
		checkRoundTrip(t, data, kp, err)
		if err == nil && kp.TBS() == nil {
			t.Fatal("decoded KeyPackage has no TBS")
		}
	})
}

func FuzzWelcome(f *testing.F) {
	for _, s := range seeds(f, "mls_welcome/body") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := wire.UnmarshalWelcome(data)
		checkRoundTrip(t, data, w, err)
	})
}

func FuzzGroupInfo(f *testing.F) {
	for _, s := range seeds(f, "mls_group_info/body") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		gi, err := wire.UnmarshalGroupInfo(data)
		checkRoundTrip(t, data, gi, err)
	})
}

func FuzzLeafNode(f *testing.F) {
	// update_proposal is an Update, whose only field is a LeafNode.
	for _, s := range seeds(f, "update_proposal") {
		f.Add(s)
	}
	for _, s := range seeds(f, "mls_key_package/body") {
		if kp, err := wire.UnmarshalKeyPackage(s); err == nil {
			f.Add(kp.LeafNode.Raw())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ln, err := wire.UnmarshalLeafNode(data)
		checkRoundTrip(t, data, ln, err)
		if err == nil && ln.TBS([]byte("g"), 1) == nil {
			t.Fatal("decoded LeafNode has no TBS")
		}
	})
}

func FuzzRatchetTree(f *testing.F) {
	for _, s := range seeds(f, "ratchet_tree") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rt, err := wire.UnmarshalRatchetTree(data)
		if err != nil {
			return
		}
		checkRoundTrip(t, data, &rt, nil)
	})
}

// BenchmarkDecodeMLSMessage decodes a real PublicMessage commit from the
// official vectors (the largest public_message_commit in messages.json).
func BenchmarkDecodeMLSMessage(b *testing.B) {
	var msg []byte
	for _, s := range seeds(b, "public_message_commit") {
		if len(s) > len(msg) {
			msg = s
		}
	}
	if msg == nil {
		b.Skip(conformance.ErrNoVectors)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.UnmarshalMLSMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(msg)), "msg-bytes")
}

// BenchmarkEncodeMLSMessage re-encodes the same decoded commit.
func BenchmarkEncodeMLSMessage(b *testing.B) {
	var msg []byte
	for _, s := range seeds(b, "public_message_commit") {
		if len(s) > len(msg) {
			msg = s
		}
	}
	if msg == nil {
		b.Skip(conformance.ErrNoVectors)
	}
	m, err := wire.UnmarshalMLSMessage(msg)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	buf := make([]byte, 0, len(msg))
	for b.Loop() {
		bld := codec.NewBuilder(buf[:0])
		m.Marshal(bld)
		if _, err := bld.Bytes(); err != nil {
			b.Fatal(err)
		}
	}
}
